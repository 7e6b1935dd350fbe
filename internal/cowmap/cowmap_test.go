package cowmap

import (
	"strconv"
	"sync"
	"testing"
)

func TestMap(t *testing.T) {
	var m Map[int, string]
	if v, ok := m.Load(1); ok || v != "" {
		t.Fatalf("Load on the zero Map = %q, %v; want \"\", false", v, ok)
	}
	if got := m.Add(1, "a"); got != "a" {
		t.Fatalf("Add(1, a) = %q; want a", got)
	}
	if got := m.Add(1, "b"); got != "a" {
		t.Fatalf("Add(1, b) after Add(1, a) = %q; want the first value a", got)
	}
	if v, ok := m.Load(1); !ok || v != "a" {
		t.Fatalf("Load(1) = %q, %v; want a, true", v, ok)
	}
	for i := 2; i <= Max+10; i++ {
		if got := m.Add(i, strconv.Itoa(i)); got != strconv.Itoa(i) {
			t.Fatalf("Add(%d) = %q; want the value passed in, stored or not", i, got)
		}
	}
	if n := m.Len(); n != Max {
		t.Fatalf("Len after %d additions = %d; want the bound %d", Max+10, n, Max)
	}
	if _, ok := m.Load(Max + 5); ok {
		t.Fatal("a key added past the bound was stored")
	}
}

// TestConcurrent races readers against writers (run with -race): every
// reader sees either no value or the first one added for its key.
func TestConcurrent(t *testing.T) {
	var m Map[int, int]
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				got := m.Add(i, i*10+g%2)
				if got/10 != i {
					t.Errorf("Add(%d) = %d; want a value for key %d", i, got, i)
					return
				}
				if v, ok := m.Load(i); !ok || v != got {
					t.Errorf("Load(%d) = %d, %v after Add returned %d", i, v, ok, got)
					return
				}
			}
		}()
	}
	wg.Wait()
}
