package recovery

// UserSessionReadTx is the part of ReadTx that reads end-user sessions and sign-in.
type UserSessionReadTx interface {
}

// UserSessionTx is the part of Tx that writes end-user sessions and sign-in.
type UserSessionTx interface {
}
