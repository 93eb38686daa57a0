package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/s3client"
)

// TestAWSFlags: the AWS flags reach s3client.Config, and bad values are
// usage errors naming the flag.
func TestAWSFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		want    func(s3client.Config) bool
	}{
		{"defaults", nil, "", func(c s3client.Config) bool {
			return c.Checksum == s3client.ChecksumCRC32C && c.SSE == "" && c.StorageClass == "" && !c.RequesterPays && !c.Anonymous &&
				!c.InsecureSkipVerify && c.CABundle == ""
		}},
		{"all", []string{"--ca-bundle", "/ca.pem", "--no-verify-ssl", "--no-sign-request", "--requester-pays", "--sse", "aws:kms",
			"--sse-kms-key-id", "alias/k", "--storage-class", "STANDARD_IA", "--checksum", "crc64nvme"}, "", func(c s3client.Config) bool {
			return c.CABundle == "/ca.pem" && c.InsecureSkipVerify && c.Anonymous && c.RequesterPays && c.SSE == "aws:kms" &&
				c.SSEKMSKeyID == "alias/k" && c.StorageClass == "STANDARD_IA" && c.Checksum == "crc64nvme"
		}},
		{"as mount options", []string{"-o", "sse=AES256,checksum=none,requester_pays,no_sign_request"}, "", func(c s3client.Config) bool {
			return c.SSE == "AES256" && c.Checksum == "none" && c.RequesterPays && c.Anonymous
		}},
		{"kms key implies aws:kms", []string{"--sse-kms-key-id", "alias/k"}, "", func(c s3client.Config) bool {
			return c.SSE == s3client.SSEKMS && c.SSEKMSKeyID == "alias/k"
		}},
		{"kms key with AES256", []string{"--sse", "AES256", "--sse-kms-key-id", "alias/k"}, "--sse-kms-key-id is a KMS key", nil},
		{"bad sse", []string{"--sse", "kms"}, `--sse: "kms": want aws:kms or AES256`, nil},
		{"bad checksum", []string{"--checksum", "md5"}, `--checksum: "md5": want crc32c or crc64nvme or none`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(append(tc.args, "b", "/m")...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if _, ok := err.(*usageError); !ok {
					t.Fatalf("err %v is not a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg := clientConfig(o.bucket, o.conn); !tc.want(cfg) {
				t.Fatalf("config %+v", cfg)
			}
		})
	}
}

// TestCleanupAccessFlags: cleanup takes the flags of TLS, signing and billing.
func TestCleanupAccessFlags(t *testing.T) {
	o := &cleanupOptions{}
	if _, err := newCleanupFlags(o).parse([]string{"--requester-pays", "--no-verify-ssl", "--ca-bundle", "/ca.pem", "b"}); err != nil {
		t.Fatal(err)
	}
	if !o.conn.aws.requesterPays || !o.conn.aws.noVerifySSL || o.conn.aws.caBundle != "/ca.pem" {
		t.Fatalf("options %+v", o.conn.aws)
	}
}

// TestInsecureWarning: --no-verify-ssl is logged as a warning; without it
// nothing is.
func TestInsecureWarning(t *testing.T) {
	var buf, stderr bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	warnInsecure(awsOptions{}, log, &stderr)
	if buf.Len()+stderr.Len() != 0 {
		t.Fatalf("warned without --no-verify-ssl: %q %q", buf.String(), stderr.String())
	}
	warnInsecure(awsOptions{noVerifySSL: true}, log, &stderr)
	if !strings.Contains(buf.String(), "level=warning") || !strings.Contains(buf.String(), "NOT verified") ||
		!strings.Contains(stderr.String(), "WARNING") {
		t.Fatalf("log %q, stderr %q", buf.String(), stderr.String())
	}
}
