package fs

// MemoryStats is what a mount's memory budgets hold now, for metrics.
type MemoryStats struct {
	UploadInUse, UploadLimit int64 // part buffers (Config.Upload.MemoryLimit)
	ReadInUse, ReadLimit     int64 // read blocks (Config.ReadMemory)
}

// Memory returns the memory in use against the mount's budgets.
func (s *Server) Memory() MemoryStats {
	readInUse, _ := s.b.reads.reserved()
	return MemoryStats{
		UploadInUse: s.b.up.MemoryInUse(),
		UploadLimit: s.b.up.MemoryLimit(),
		ReadInUse:   readInUse,
		ReadLimit:   s.b.reads.limit,
	}
}

// UploadsInFlight returns the files with an open upload, and the parts
// being uploaded or copied now.
func (s *Server) UploadsInFlight() (files, parts int) {
	return s.b.openWriters(), s.b.up.PartsInFlight()
}
