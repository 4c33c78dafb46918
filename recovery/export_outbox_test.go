package recovery

import "context"

// Hooks for the outbox tests until the recovery workflow queues notices itself.

var outboxTestActor = Actor{Type: ActorSystem, ID: "test", RequestID: "req-outbox"}

// QueueNotice queues n in a transaction of its own, as a change would inside its transaction.
func QueueNotice(ctx context.Context, s *Service, n Notice, secrets ...string) error {
	return s.store.Update(ctx, func(tx Tx) error {
		return s.queueNotice(tx, newAuditLog(tx, s.now(), outboxTestActor), n, secrets...)
	})
}

// QueueHostEvent queues a host webhook event in a transaction of its own.
func QueueHostEvent(ctx context.Context, s *Service, event, accountID string, data map[string]any) error {
	return s.store.Update(ctx, func(tx Tx) error {
		return s.queueHostEvent(tx, newAuditLog(tx, s.now(), outboxTestActor), event, accountID, data)
	})
}
