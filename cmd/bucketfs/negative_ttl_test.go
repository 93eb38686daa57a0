package main

import (
	"strings"
	"testing"
	"time"
)

// TestNegativeTTLFlag: --negative-ttl (and -o negative_ttl=) sets how long
// an absent name is trusted, 1s by default; 0 reaches fs.Config as a
// nanosecond (never trusted), not as "the default".
func TestNegativeTTLFlag(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		want    time.Duration // o.negativeTTL
		wantFS  time.Duration // what fs.Config gets
	}{
		{"default", []string{"b", "/m"}, "", time.Second, time.Second},
		{"flag", []string{"--negative-ttl", "200ms", "b", "/m"}, "", 200 * time.Millisecond, 200 * time.Millisecond},
		{"mount option", []string{"-o", "negative_ttl=3s", "b", "/m"}, "", 3 * time.Second, 3 * time.Second},
		{"zero", []string{"b", "/m", "--negative-ttl=0"}, "", 0, time.Nanosecond},
		{"negative", []string{"--negative-ttl", "-1s", "b", "/m"}, "negative", 0, 0},
		{"not a duration", []string{"--negative-ttl", "soon", "b", "/m"}, "not a duration", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.negativeTTL != tc.want || o.fsNegativeTTL() != tc.wantFS {
				t.Fatalf("negativeTTL %v (fs %v), want %v (fs %v)", o.negativeTTL, o.fsNegativeTTL(), tc.want, tc.wantFS)
			}
			if cfg := mountConfig(o, nil, nil); cfg.NegativeTTL != tc.wantFS {
				t.Fatalf("fs.Config.NegativeTTL = %v, want %v", cfg.NegativeTTL, tc.wantFS)
			}
		})
	}
}
