package sqlstore

// BatchStats reports how many transactions the SQLite writer ran and how many Updates they
// held, so that tests can see group commit happen.
func BatchStats(s *Store) (batches, requests int64) {
	return s.w.batches.Load(), s.w.committed.Load()
}

// QueueLen is how many Updates wait for the SQLite writer.
func QueueLen(s *Store) int { return len(s.w.reqs) }

// ActiveStatesSQL is the queue index's predicate, for the test that keeps it in step with the domain.
const ActiveStatesSQL = activeStatesSQL
