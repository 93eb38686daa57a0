package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestLogFormatJSON checks that --log-format json writes one JSON object a
// line, with the level, the message and the fields.
func TestLogFormatJSON(t *testing.T) {
	o, err := parse("--log-format", "json", "bucket", "/mnt")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	log, _, err := newLogger(o, &out, false)
	if err != nil {
		t.Fatal(err)
	}
	logSettings(log, o)
	log.WithField("key", "a \"quoted\"\nkey").Warn("second line")
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %d: %q", len(lines), out.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("line 1 is not JSON: %v: %s", err, lines[0])
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatalf("line 2 is not JSON: %v: %s", err, lines[1])
	}
	if first["msg"] != "starting" || first["level"] != "info" || first["bucket"] != "bucket" {
		t.Errorf("line 1 = %v", first)
	}
	if second["msg"] != "second line" || second["level"] != "warning" || second["key"] != "a \"quoted\"\nkey" {
		t.Errorf("line 2 = %v", second)
	}
}

func TestLogFormatAndMetricsAddrChecked(t *testing.T) {
	for _, args := range [][]string{
		{"--log-format", "xml", "b", "/m"},
		{"--metrics-addr", "9100", "b", "/m"},
		{"--metrics-addr", "127.0.0.1:", "b", "/m"},
	} {
		var ue *usageError
		if _, err := parse(args...); !errors.As(err, &ue) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
	o, err := parse("--metrics-addr", "127.0.0.1:9100", "-o", "log_format=json", "b", "/m")
	if err != nil || o.metricsAddr != "127.0.0.1:9100" || o.logFormat != "json" {
		t.Fatalf("parse = %+v, %v", o, err)
	}
}
