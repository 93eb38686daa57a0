package fs

import "testing"

func TestUnescapeMountPath(t *testing.T) {
	if got := unescapeMountPath(`/a\040b\011c`); got != "/a b\tc" {
		t.Fatalf("got %q", got)
	}
}

func TestIsMountpoint(t *testing.T) {
	if ok, err := IsMountpoint("/"); !ok || err != nil {
		t.Fatalf("IsMountpoint(/) = %v, %v", ok, err)
	}
	if ok, err := IsMountpoint(t.TempDir()); ok || err != nil {
		t.Fatalf("IsMountpoint(a fresh directory) = %v, %v", ok, err)
	}
}
