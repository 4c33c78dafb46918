package recovery

import "context"

// AppendThenReturn appends one audit event (target account "observed") in a transaction of its
// own and then ends the transaction with ret: nil commits it, an error rolls it back.
func AppendThenReturn(ctx context.Context, s *Service, action string, details map[string]any, ret error) error {
	return s.store.Update(ctx, func(tx Tx) error {
		if err := newAuditLog(tx, s.now(), outboxTestActor).add(action, "account", "observed", details); err != nil {
			return err
		}
		return ret
	})
}
