package s3client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Values of Config.Checksum.
const (
	ChecksumCRC32C    = "crc32c"    // the default
	ChecksumCRC64NVME = "crc64nvme" // S3's full-object checksum
	ChecksumNone      = "none"      // only where S3 requires one (DeleteObjects)
)

// Values of Config.SSE.
const (
	SSEKMS    = "aws:kms"
	SSEAES256 = "AES256"
)

// writeOptions are the settings every write and read of an object carries,
// resolved once from Config.
type writeOptions struct {
	sse          types.ServerSideEncryption // "" for the bucket's default
	kmsKeyID     *string
	storageClass types.StorageClass      // "" for the bucket's default
	payer        types.RequestPayer      // requester or ""
	checksum     types.ChecksumAlgorithm // "" for none
}

// resolveWriteOptions checks the AWS options of cfg.
func resolveWriteOptions(cfg Config) (writeOptions, error) {
	var w writeOptions
	switch cfg.SSE {
	case "", SSEKMS, SSEAES256:
		w.sse = types.ServerSideEncryption(cfg.SSE)
	default:
		return w, fmt.Errorf("server-side encryption %q: want %s or %s", cfg.SSE, SSEKMS, SSEAES256)
	}
	if cfg.SSEKMSKeyID != "" {
		if cfg.SSE != SSEKMS {
			return w, fmt.Errorf("a KMS key ID needs server-side encryption %s", SSEKMS)
		}
		w.kmsKeyID = aws.String(cfg.SSEKMSKeyID)
	}
	w.storageClass = types.StorageClass(cfg.StorageClass)
	if cfg.RequesterPays {
		w.payer = types.RequestPayerRequester
	}
	switch cfg.Checksum {
	case "", ChecksumCRC32C:
		w.checksum = types.ChecksumAlgorithmCrc32c
	case ChecksumCRC64NVME:
		w.checksum = types.ChecksumAlgorithmCrc64nvme
	case ChecksumNone:
	default:
		return w, fmt.Errorf("checksum %q: want %s, %s or %s", cfg.Checksum, ChecksumCRC32C, ChecksumCRC64NVME, ChecksumNone)
	}
	return w, nil
}

// tlsConfig is the TLS configuration of the transport: the CAs of
// cfg.CABundle, else those the SDK resolved from AWS_CA_BUNDLE or the
// profile's ca_bundle (sdkClient, which bucketfs does not use otherwise),
// else the system's; no verification with cfg.InsecureSkipVerify. nil
// means Go's defaults.
func tlsConfig(cfg Config, sdkClient aws.HTTPClient) (*tls.Config, error) {
	var roots *x509.CertPool
	if cfg.CABundle != "" {
		pem, err := os.ReadFile(cfg.CABundle)
		if err != nil {
			return nil, fmt.Errorf("reading the CA bundle: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the CA bundle %s holds no PEM certificate", cfg.CABundle)
		}
	} else if bc, ok := sdkClient.(*awshttp.BuildableClient); ok {
		if tr := bc.GetTransport(); tr != nil && tr.TLSClientConfig != nil {
			roots = tr.TLSClientConfig.RootCAs
		}
	}
	if roots == nil && !cfg.InsecureSkipVerify {
		return nil, nil
	}
	return &tls.Config{RootCAs: roots, InsecureSkipVerify: cfg.InsecureSkipVerify, MinVersion: tls.VersionTLS12}, nil
}
