package workers

// TrackedJobs is how many jobs the status writer holds state for (a pending write or the time
// of the last one).
func (w *CRStatusWriter) TrackedJobs() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.pending)
	for id := range w.lastWrite {
		if _, ok := w.pending[id]; !ok {
			n++
		}
	}
	return n
}
