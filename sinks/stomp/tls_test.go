package stomp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// tlsServer runs the in-process server behind TLS with a fresh self-signed
// certificate for 127.0.0.1, and returns its address and CA file.
func tlsServer(t *testing.T) (addr, caFile string, rec *recorder) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sinkbus test broker"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	})
	require.NoError(t, err)
	rec = startServer(t, ln, nil)
	return ln.Addr().String(), caFile, rec
}

func TestStompSink_tls_address(t *testing.T) {
	addr, caFile, rec := tlsServer(t)
	for _, tc := range []struct {
		name string
		tls  stomp.TLS
	}{
		{"trusted CA file", stomp.TLS{CAFile: caFile}},
		{"insecure skip verify", stomp.TLS{InsecureSkipVerify: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newSink(t, stomp.Config{Addresses: []string{"stomp+ssl://" + addr}, Destination: "/queue/q",
				Connections: 1, TLS: tc.tls}, sinks.Env{})
			msg := event("order.created", "", `{}`)
			require.NoError(t, p.Publish("", msg))
			assert.Equal(t, msg.UUID, rec.next(t).Header.Get(stomp.HeaderID))
		})
	}
	t.Run("unknown certificate is permanent", func(t *testing.T) {
		p := newSink(t, stomp.Config{Addresses: []string{"ssl://" + addr}, Destination: "/queue/q", Connections: 1}, sinks.Env{})
		err := p.Publish("", event("order.created", "", `{}`))
		require.ErrorIs(t, err, stomp.ErrNotConnected)
		class, _ := sinks.Classify(err)
		assert.Equal(t, sinks.ClassPermanent, class, "%v", err)
		assert.Contains(t, err.Error(), "certificate")
	})
	t.Run("wrong server name is permanent", func(t *testing.T) {
		p := newSink(t, stomp.Config{Addresses: []string{"stomp+ssl://" + addr}, Destination: "/queue/q", Connections: 1,
			TLS: stomp.TLS{CAFile: caFile, ServerName: "mq.example.com"}}, sinks.Env{})
		err := p.Publish("", event("order.created", "", `{}`))
		class, _ := sinks.Classify(err)
		assert.Equal(t, sinks.ClassPermanent, class, "%v", err)
	})
	t.Run("plain address to a TLS port never connects", func(t *testing.T) {
		p := newSink(t, stomp.Config{Addresses: []string{"stomp://" + addr}, Destination: "/queue/q", Connections: 1,
			ConnectTimeout: sinks.Duration(stomp.MinTimeout)}, sinks.Env{})
		err := p.Publish("", event("order.created", "", `{}`))
		require.ErrorIs(t, err, stomp.ErrNotConnected)
		class, _ := sinks.Classify(err)
		assert.Equal(t, sinks.ClassRetryable, class, "%v", err)
	})
}
