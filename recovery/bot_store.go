package recovery

// BotReadTx is the part of ReadTx that reads the Telegram bot's state.
type BotReadTx interface {
}

// BotTx is the part of Tx that writes the Telegram bot's state.
type BotTx interface {
}
