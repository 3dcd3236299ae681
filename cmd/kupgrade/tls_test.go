package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestConfigTLSFiles proves that TLS files are read relative to the config
// file, and that a key that does not match its certificate is refused.
func TestConfigTLSFiles(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	writeFile(t, dir, "ca.pem", certPEM)
	writeFile(t, dir, "client.pem", certPEM)
	writeFile(t, dir, "client.key", keyPEM)
	c, err := loadConfig(writeFile(t, dir, "c.json", `{"seeds":["127.0.0.1:9093"],"tls":{"ca":"ca.pem","cert":"client.pem","key":"client.key"}}`))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := c.clientOpts()
	if err != nil {
		t.Fatal(err)
	}
	if len(opts) != 2 {
		t.Errorf("%d client options, want seeds and TLS", len(opts))
	}
	_, otherKey := selfSigned(t)
	writeFile(t, dir, "client.key", otherKey)
	if _, err := c.clientOpts(); err == nil || !strings.Contains(err.Error(), "tls cert/key") {
		t.Errorf("mismatched key: %v, want a tls cert/key error", err)
	}
}

// selfSigned returns a new self-signed certificate and its key, in PEM.
func selfSigned(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kupgrade test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}))
}
