package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/s3client"
)

// awsOptions are the AWS settings of a connection: TLS, signing and
// billing (a mount and cleanup), and how new objects are stored (a mount).
type awsOptions struct {
	caBundle      string // --ca-bundle
	noVerifySSL   bool   // --no-verify-ssl
	noSignRequest bool   // --no-sign-request
	requesterPays bool   // --requester-pays
	sse           string // --sse
	sseKMSKeyID   string // --sse-kms-key-id
	storageClass  string // --storage-class
	checksum      string // --checksum
}

// choiceValue is one of a fixed set of words.
type choiceValue struct {
	p       *string
	choices []string
}

func (v choiceValue) String() string { return *v.p }

func (v choiceValue) Set(s string) error {
	for _, c := range v.choices {
		if s == c {
			*v.p = s
			return nil
		}
	}
	return fmt.Errorf("%q: want %s", s, strings.Join(v.choices, " or "))
}

// addAccessFlags declares the flags of TLS, signing and billing.
func addAccessFlags(g *flagGroup, a *awsOptions) {
	g.add(&flagSpec{name: "ca-bundle", arg: "FILE", def: "$AWS_CA_BUNDLE, else the system's CAs", value: stringValue{&a.caBundle},
		usage: "PEM file of the certificate authorities to trust for an https endpoint (a private CA)"})
	g.add(&flagSpec{name: "no-verify-ssl", value: boolValue{&a.noVerifySSL},
		usage: "accept any TLS certificate: anyone on the path can read and change the data; logged as a warning at every mount"})
	g.add(&flagSpec{name: "no-sign-request", value: boolValue{&a.noSignRequest},
		usage: "send unsigned requests, without credentials (public buckets; writes fail unless the bucket policy allows them)"})
	g.add(&flagSpec{name: "requester-pays", value: boolValue{&a.requesterPays},
		usage: "accept the charges of a requester-pays bucket (x-amz-request-payer on every request)"})
}

// addStorageFlags declares the flags that say how new objects are stored.
func addStorageFlags(g *flagGroup, a *awsOptions) {
	g.add(&flagSpec{name: "sse", arg: "ALG", def: "the bucket's default", value: choiceValue{&a.sse, []string{s3client.SSEKMS, s3client.SSEAES256}},
		usage: "server-side encryption of new objects and copies: aws:kms or AES256"})
	g.add(&flagSpec{name: "sse-kms-key-id", arg: "ID", def: "the account's aws/s3 key", value: stringValue{&a.sseKMSKeyID},
		usage: "KMS key (ID, ARN or alias) of SSE-KMS; implies --sse aws:kms"})
	g.add(&flagSpec{name: "storage-class", arg: "C", def: "the bucket's default", value: stringValue{&a.storageClass},
		usage: "storage class of new objects and copies (STANDARD, STANDARD_IA, INTELLIGENT_TIERING, REDUCED_REDUNDANCY, ...)"})
	a.checksum = s3client.ChecksumCRC32C
	g.add(&flagSpec{name: "checksum", arg: "ALG", def: s3client.ChecksumCRC32C,
		value: choiceValue{&a.checksum, []string{s3client.ChecksumCRC32C, s3client.ChecksumCRC64NVME, s3client.ChecksumNone}},
		usage: "checksum S3 verifies on every upload: crc32c, crc64nvme or none (for stores that refuse them; DeleteObjects still carries the one S3 requires)"})
}

// check validates what each AWS flag alone cannot.
func (a awsOptions) check() error {
	if a.sseKMSKeyID != "" && a.sse == s3client.SSEAES256 {
		return usagef("--sse-kms-key-id is a KMS key: it needs --sse aws:kms, not AES256")
	}
	return nil
}

// apply sets the AWS fields of cfg.
func (a awsOptions) apply(cfg *s3client.Config) {
	cfg.CABundle = a.caBundle
	cfg.InsecureSkipVerify = a.noVerifySSL
	cfg.Anonymous = a.noSignRequest
	cfg.RequesterPays = a.requesterPays
	cfg.SSE = a.sse
	if a.sseKMSKeyID != "" {
		cfg.SSE = s3client.SSEKMS
	}
	cfg.SSEKMSKeyID = a.sseKMSKeyID
	cfg.StorageClass = a.storageClass
	cfg.Checksum = a.checksum
}

// insecureWarning is logged at every mount with --no-verify-ssl.
const insecureWarning = "--no-verify-ssl: TLS certificates are NOT verified; anyone between this host and S3 can read and change the data and capture credentials"

// warnInsecure logs insecureWarning to log (when set) and w (when set).
func warnInsecure(a awsOptions, log logrus.FieldLogger, w io.Writer) {
	if !a.noVerifySSL {
		return
	}
	if log != nil {
		log.WithField("endpoint_tls", "unverified").Warn(insecureWarning)
	}
	if w != nil {
		fmt.Fprintf(w, "bucketfs: WARNING: %s\n", insecureWarning)
	}
}
