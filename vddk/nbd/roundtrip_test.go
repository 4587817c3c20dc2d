package nbd

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Our client against our server, plain and over TLS: reads (concurrent, unaligned, past the end) and
// the allocation map come back as served.
func TestClientAgainstServer(t *testing.T) {
	img, data := testImage(2<<20 + 512)
	for _, useTLS := range []bool{false, true} {
		srv := &Server{Exports: []*Export{memExport("a", img, data), memExport("b", img[:4096], nil)}, MaxRequest: 64 << 10}
		sock, uri, opts := serveMaybeTLS(t, srv, "a", useTLS)
		if useTLS {
			if _, err := Dial(unixURI(sock, "a"), Options{}); err == nil || !strings.Contains(err.Error(), "TLS required") {
				t.Errorf("plain client on a TLS server: %v", err)
			}
		}
		d, err := Dial(uri, opts)
		if err != nil {
			t.Fatal(err)
		}
		if d.Size() != int64(len(img)) {
			t.Fatalf("size %d, want %d", d.Size(), len(img))
		}
		if d.Conns() != 4 {
			t.Errorf("%d connections to a read-only export, want 4 (multi-conn)", d.Conns())
		}
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Go(func() {
				off := int64(i * 61 * 1021)
				buf := make([]byte, 300<<10)
				n, err := d.ReadAt(buf, off)
				want := img[off:min(off+int64(len(buf)), int64(len(img)))]
				if (err != nil && n == len(buf)) || !bytes.Equal(buf[:n], want) {
					t.Errorf("ReadAt(%d): %d, %v; content differs: %v", off, n, err, !bytes.Equal(buf[:n], want))
				}
			})
		}
		wg.Wait()
		ext, err := d.Extents(0, d.Size())
		if err != nil {
			t.Fatal(err)
		}
		var got []Extent
		for _, e := range ext {
			if !e.Hole {
				got = append(got, e)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(data) {
			t.Errorf("data extents %v, want %v", got, data)
		}
		d.Close()
		if _, err := d.ReadAt(make([]byte, 1), 0); err == nil {
			t.Error("read after Close succeeded")
		}
	}
}

// serveMaybeTLS starts srv, requiring TLS (a self-signed certificate) when useTLS, and returns its
// socket, the URI of export and the options of a client that trusts the certificate.
func serveMaybeTLS(t *testing.T, srv *Server, export string, useTLS bool) (sock, uri string, opts Options) {
	scheme := "nbd+unix"
	if useTLS {
		cert, pool := selfSigned(t)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		scheme = "nbds+unix"
		opts.TLS = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	}
	sock = startServer(t, srv)
	return sock, scheme + ":///" + export + "?socket=" + sock, opts
}

// selfSigned makes a certificate for localhost and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// writePEM writes the certificate and key as PEM files into dir (the names libnbd and qemu look for).
func writePEM(t *testing.T, cert tls.Certificate, dir string) (certFile, keyFile string) {
	kb, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server-cert.pem"), filepath.Join(dir, "server-key.pem")
	cp := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	for p, b := range map[string][]byte{certFile: cp, filepath.Join(dir, "ca-cert.pem"): cp,
		keyFile: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// nbdinfo (libnbd, GnuTLS) reads our server over TLS, certificate checked.
func TestServerTLSWithNbdinfo(t *testing.T) {
	needTool(t, "nbdinfo", "nbdcopy")
	img, data := testImage(2 << 20)
	cert, _ := selfSigned(t)
	dir := t.TempDir()
	writePEM(t, cert, dir)
	sock := startServer(t, &Server{Exports: []*Export{memExport("", img, data)}, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	uri := "nbds+unix:///?socket=" + sock + "&tls-certificates=" + dir + "&tls-hostname=localhost"
	info := string(run(t, "nbdinfo", uri))
	if !strings.Contains(info, "TLS") || !strings.Contains(info, "export-size: 2097152") {
		t.Errorf("nbdinfo over TLS:\n%s", info)
	}
	out := filepath.Join(dir, "copy")
	os.WriteFile(out, nil, 0o644)
	run(t, "nbdcopy", uri, out)
	if b, _ := os.ReadFile(out); !bytes.Equal(b, img) {
		t.Error("nbdcopy over TLS: content differs")
	}
}

// Over TCP (loopback), through a dropped connection and a dead server: no log line at info level or
// above and no error names the host, its address or the credentials of the URI.
func TestNoHostInLogs(t *testing.T) {
	img, data := testImage(2 << 20)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Exports: []*Export{memExport("disk", img, data)}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, l); close(done) }()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	port := l.Addr().(*net.TCPAddr).Port
	d, err := Dial(fmt.Sprintf("nbd://secretuser:secretpw@localhost:%d/disk", port), Options{Log: log, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	buf := make([]byte, 4096)
	if _, err := d.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	cancel() // the server closes every connection and stops listening
	<-done
	_, err = d.ReadAt(buf, 0)
	if err == nil {
		t.Fatal("read from a stopped server succeeded")
	}
	all := logs.String() + err.Error() + d.String()
	for _, secret := range []string{"localhost", "127.0.0.1", fmt.Sprint(port), "secret"} {
		if strings.Contains(all, secret) {
			t.Errorf("%q in the logs or errors:\n%s", secret, all)
		}
	}
	if !strings.Contains(logs.String(), "nbd connection lost") {
		t.Errorf("no log of the lost connection:\n%s", logs.String())
	}
}

// memWriter takes writes into a byte slice.
type memWriter struct{ b []byte }

func (m *memWriter) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }
func (m *memWriter) Flush() error                             { return nil }

// A writable export does not advertise multi-conn (a write on one connection need not be seen on
// another): the client keeps to one connection there.
func TestOneConnWithoutMultiConn(t *testing.T) {
	img, data := testImage(2 << 20)
	e := memExport("w", img, data)
	e.W = &memWriter{img}
	d, err := Dial(unixURI(startServer(t, &Server{Exports: []*Export{e}}), "w"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Conns() != 1 || d.ReadOnly() {
		t.Errorf("writable export: %d connections, read-only %v; want 1, false", d.Conns(), d.ReadOnly())
	}
	buf := make([]byte, len(img))
	if _, err := d.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, img) {
		t.Errorf("ReadAt: %v, content equal %v", err, bytes.Equal(buf, img))
	}
}

// slowReader delays every read, so that a request outlasts the server's idle timeout.
type slowReader struct {
	r     io.ReaderAt
	delay time.Duration
}

func (s slowReader) ReadAt(p []byte, off int64) (int, error) {
	time.Sleep(s.delay)
	return s.r.ReadAt(p, off)
}

// A connection that sends nothing for the idle timeout is closed by the server (our client reconnects,
// and says so); one whose request is still being served is not, however long it takes.
func TestServerIdleTimeout(t *testing.T) {
	img, data := testImage(2 << 20)
	slow := memExport("slow", img, data)
	slow.R = slowReader{bytes.NewReader(img), 600 * time.Millisecond}
	var srvLogs syncBuffer
	srv := &Server{Exports: []*Export{memExport("idle", img, data), slow}, IdleTimeout: 200 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&srvLogs, nil))}
	sock := startServer(t, srv)
	for _, name := range []string{"idle", "slow"} {
		var logs syncBuffer
		d, err := Dial(unixURI(sock, name), Options{Conns: 1, Log: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		if name == "idle" {
			time.Sleep(500 * time.Millisecond)
		}
		if _, err := d.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, img[:4096]) {
			t.Errorf("%s: read: %v", name, err)
		}
		lost := strings.Contains(logs.String(), "nbd connection lost")
		if lost != (name == "idle") {
			t.Errorf("%s: the client saw its connection closed: %v, want %v\n%s", name, lost, name == "idle", logs.String())
		}
		d.Close()
	}
	if !strings.Contains(srvLogs.String(), "closed after being idle") {
		t.Errorf("the server did not log the idle connection it closed:\n%s", srvLogs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
