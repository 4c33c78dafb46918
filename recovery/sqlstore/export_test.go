package sqlstore

// BatchStats reports how many batches the writer ran and how many Updates they held, so that
// tests can see group commit happen.
func BatchStats(s *Store) (batches, requests int64) {
	return s.w.batches.Load(), s.w.committed.Load()
}

// BatchReruns is how many PostgreSQL batches the writer ran again after a retryable error.
func BatchReruns(s *Store) int64 { return s.w.reruns.Load() }

// PgAttempts is how often the writer runs a PostgreSQL batch that keeps failing with a
// retryable error.
const PgAttempts = pgAttempts

// PoolSize is how many PostgreSQL connections a Store holds at most, the writer's included.
const PoolSize = poolSize

// QueueLen is how many Updates wait for the writer.
func QueueLen(s *Store) int { return len(s.w.reqs) }

// ActiveStatesSQL is the queue index's predicate, for the test that keeps it in step with the domain.
const ActiveStatesSQL = activeStatesSQL
