package devenv

import "testing"

// The workers' metrics ports are chosen together: none is handed out twice.
func TestFreeLoopbackAddressesAreDistinct(t *testing.T) {
	for range 200 {
		addrs, err := freeLoopbackAddresses(3)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, a := range addrs {
			if seen[a] {
				t.Fatalf("%s handed out twice in %v", a, addrs)
			}
			seen[a] = true
		}
	}
}
