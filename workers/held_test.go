package workers

import (
	"testing"

	. "github.com/onsi/gomega"
)

// A job handed back may be leased again by the same pool before the run that handed it back is
// over: the new run keeps the job held when the old one lets go of it, so a stray-lease sweep
// does not take it from under the new run.
func TestHeldJobOutlivesItsEarlierRun(t *testing.T) {
	g := NewWithT(t)
	h := &heldJobs{ids: map[string]int{}}
	h.add("job") // the first run
	h.add("job") // leased again while the first run is still ending
	h.remove("job")
	g.Expect(h.list()).To(ConsistOf("job"))
	h.remove("job")
	g.Expect(h.list()).To(BeEmpty())
}
