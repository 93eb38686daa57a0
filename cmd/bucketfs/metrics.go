package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	bfs "github.com/bucketfs/bucketfs/fs"
)

// metricsServer serves one mount's Prometheus registry at /metrics
// (--metrics-addr). The registry is the mount's own: nothing is global.
type metricsServer struct {
	reg *prometheus.Registry
	srv *http.Server

	fuseOps     *prometheus.CounterVec   // operation
	fuseLatency *prometheus.HistogramVec // operation
	fuseErrors  *prometheus.CounterVec   // errno
}

// startMetrics listens on addr, so that a port in use fails the mount
// before it is made, and serves the registry until Close.
func startMetrics(addr string, log logrus.FieldLogger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m := &metricsServer{
		reg: reg,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		fuseOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bucketfs_fuse_operations_total",
			Help: "FUSE operations answered, by operation (lookup, getattr, read, write, flush, ...).",
		}, []string{"operation"}),
		fuseLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bucketfs_fuse_operation_duration_seconds",
			Help:    "Time bucketfs took to answer FUSE operations, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100 µs to 26 s
		}, []string{"operation"}),
		fuseErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bucketfs_fuse_errors_total",
			Help: "FUSE operations answered with an error, by errno (ENOENT, EIO, ...).",
		}, []string{"errno"}),
	}
	reg.MustRegister(m.fuseOps, m.fuseLatency, m.fuseErrors)
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("metrics server stopped")
		}
	}()
	log.WithField("metrics_addr", ln.Addr().String()).Info("serving metrics")
	return m, nil
}

// addMount registers the gauges read from a live mount.
func (m *metricsServer) addMount(s *bfs.Server) {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		gauge("bucketfs_upload_memory_bytes", "Bytes of part buffers reserved by uploads now.",
			func() float64 { return float64(s.Memory().UploadInUse) }),
		gauge("bucketfs_upload_memory_limit_bytes", "The part buffer budget (--upload-memory).",
			func() float64 { return float64(s.Memory().UploadLimit) }),
		gauge("bucketfs_read_memory_bytes", "Bytes of read blocks held by open files now.",
			func() float64 { return float64(s.Memory().ReadInUse) }),
		gauge("bucketfs_read_memory_limit_bytes", "The read block budget (--read-memory).",
			func() float64 { return float64(s.Memory().ReadLimit) }),
		gauge("bucketfs_uploads_in_flight", "Files with an upload open (being written, not yet committed).",
			func() float64 { files, _ := s.UploadsInFlight(); return float64(files) }),
		gauge("bucketfs_upload_parts_in_flight", "Parts being uploaded or copied now.",
			func() float64 { _, parts := s.UploadsInFlight(); return float64(parts) }),
	)
}

// observeOp is fs.Config.ObserveOp.
func (m *metricsServer) observeOp(op string, took time.Duration, errno syscall.Errno) {
	m.fuseOps.WithLabelValues(op).Inc()
	m.fuseLatency.WithLabelValues(op).Observe(took.Seconds())
	if errno != 0 {
		name := unix.ErrnoName(errno)
		if name == "" {
			name = strconv.Itoa(int(errno))
		}
		m.fuseErrors.WithLabelValues(name).Inc()
	}
}

// Close stops serving.
func (m *metricsServer) Close() error { return m.srv.Close() }
