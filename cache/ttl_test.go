package cache

import (
	"testing"
	"time"
)

func TestTTLSetGetExpire(t *testing.T) {
	c, err := NewTTL[int](100, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Set("a", 1)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("Get(a) = %v, %v right after Set", v, ok)
	}
	c.SetMany(map[string]int{"b": 2, "c": 3})
	if v, ok := c.Get("c"); !ok || v != 3 {
		t.Fatalf("Get(c) = %v, %v after SetMany", v, ok)
	}
	c.Delete("a")
	if _, ok := c.Get("a"); ok {
		t.Fatal("Get(a) found a deleted item")
	}
	time.Sleep(2500 * time.Millisecond) // ristretto expires on a 1s bucket tick
	if _, ok := c.Get("b"); ok {
		t.Fatal("item outlived its TTL")
	}
}

func TestTTLBounded(t *testing.T) {
	c, err := NewTTL[int](100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 10000; i++ {
		c.Set(string(rune('a'+i%26))+string(rune(i)), i)
	}
	n := 0
	for i := 0; i < 10000; i++ {
		if _, ok := c.Get(string(rune('a'+i%26)) + string(rune(i))); ok {
			n++
		}
	}
	if n > 100 {
		t.Fatalf("%d items cached, bound is 100", n)
	}
}
