package recovery

// Policy is the recovery policy the service enforces (read-only: adapters show its items'
// labels and help, and which are required, but never decide with it).
func (s *Service) Policy() *Policy { return s.policy }
