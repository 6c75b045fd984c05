package postgres

// Inserts returns how many insert statements the storage ran.
func Inserts(s *Storage) uint64 { return s.inserts.Load() }
