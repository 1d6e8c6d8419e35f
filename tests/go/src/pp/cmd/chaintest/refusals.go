package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/containerd/ttrpc"

	"pp/agentchain"
	"pp/harness"
	"pp/testpki"
	"pp/wire"
)

// refusalBound bounds every refusal: a peer that neither answers nor closes within it hangs.
const refusalBound = 20 * time.Second

// probeFrame is a grpc.Health/Check Request whose CheckRequest.service names the probe, so the test
// can tell whether it ever reached the agent.
func probeFrame(name string) ([]byte, error) {
	return wire.EncodeRequest(wire.HealthService, wire.MethodCheck, &wire.CheckRequest{Service: name}, 0)
}

func (e *env) agentSawProbe(name string) bool {
	_, _, err := findBy(e.agent, wire.MethodCheck, func() *wire.CheckRequest { return &wire.CheckRequest{} },
		func(m *wire.CheckRequest) bool { return m.Service == name })
	return err == nil
}

// tlsAttempt dials the forwarder with cfg and, if the handshake passes, sends a probe request.
// It returns nil when the forwarder refused (handshake error, or an alert/close instead of a reply),
// and an error when it answered the probe, the probe reached the agent, or it hung.
func (e *env) tlsAttempt(name string, cfg *tls.Config) error {
	raw, err := net.DialTimeout("tcp", e.fwd.Addr(), 5*time.Second)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer raw.Close()
	start := time.Now()
	raw.SetDeadline(start.Add(refusalBound))
	conn := tls.Client(raw, cfg)
	refused := func(how error) error {
		var ne net.Error
		if errors.As(how, &ne) && ne.Timeout() {
			return fmt.Errorf("no refusal within %v: the forwarder neither answered nor closed (%v)", refusalBound, how)
		}
		if e.agentSawProbe(name) {
			return fmt.Errorf("refused (%v) but the probe reached the agent", how)
		}
		fmt.Printf("  (%s refused after %v: %v)\n", name, time.Since(start).Round(time.Millisecond), how)
		return nil
	}
	if err := conn.Handshake(); err != nil {
		return refused(err)
	}
	// TLS 1.3: the client finishes before the server has checked its certificate, so the refusal
	// arrives as an alert (or close) on the first read.
	frame, err := probeFrame(name)
	if err != nil {
		return err
	}
	if err := wire.WriteFrame(conn, 1, wire.TypeRequest, 0, frame); err != nil {
		return refused(err)
	}
	h, data, err := wire.ReadFrame(conn)
	if err != nil {
		return refused(err)
	}
	return fmt.Errorf("forwarder answered after %v: frame %v, %d bytes (agent saw the probe: %v)", time.Since(start), h, len(data), e.agentSawProbe(name))
}

func (e *env) clientConfig(serverName string, certs ...*testpki.Leaf) (*tls.Config, error) {
	cfg := &tls.Config{RootCAs: e.pki.ca.Pool(), ServerName: serverName, MinVersion: tls.VersionTLS12}
	if len(certs) > 0 {
		c, err := certs[0].TLS()
		if err != nil {
			return nil, err
		}
		// Always present it: Go would otherwise send no certificate at all when its issuer is not
		// among the CAs the server asks for, and "another CA" would test "no certificate" again.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	return cfg, nil
}

func (e *env) tlsRefusals(r *harness.Runner) {
	if e.fwdProc == nil || e.fwdProc.Running() != nil {
		if err := e.startForwarder(e.fwd); err != nil {
			r.Run("tls/forwarder_running", func() error { return err })
			return
		}
	}
	// The control: a good client certificate and the right name work, so the refusals mean something.
	r.Run("tls/forwarder_accepts_valid_client_cert", func() error {
		cfg, err := e.clientConfig("podvm-server", e.pki.clientGood)
		if err != nil {
			return err
		}
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		conn, err := tls.DialWithDialer(dialer, "tcp", e.fwd.Addr(), cfg)
		if err != nil {
			return err
		}
		c := ttrpc.NewClient(conn)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), callBound)
		defer cancel()
		if err := c.Call(ctx, wire.HealthService, wire.MethodCheck, &wire.CheckRequest{Service: "tls-control"}, &wire.HealthCheckResponse{}); err != nil {
			return err
		}
		if !e.agentSawProbe("tls-control") {
			return fmt.Errorf("call succeeded but the agent did not see it")
		}
		if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
			return fmt.Errorf("negotiated TLS version %#x, want 1.3 (preferred)", v)
		}
		return nil
	})
	r.Run("tls/refuses_no_client_cert", func() error {
		cfg, err := e.clientConfig("podvm-server")
		if err != nil {
			return err
		}
		return e.tlsAttempt("no-client-cert", cfg)
	})
	r.Run("tls/refuses_client_cert_from_other_ca", func() error {
		cfg, err := e.clientConfig("podvm-server", e.pki.clientOtherCA)
		if err != nil {
			return err
		}
		return e.tlsAttempt("other-ca-client", cfg)
	})
	r.Run("tls/refuses_expired_client_cert", func() error {
		cfg, err := e.clientConfig("podvm-server", e.pki.clientExpired)
		if err != nil {
			return err
		}
		return e.tlsAttempt("expired-client", cfg)
	})
	r.Run("tls/refuses_tls12_no_client_cert", func() error {
		cfg, err := e.clientConfig("podvm-server")
		if err != nil {
			return err
		}
		cfg.MaxVersion = tls.VersionTLS12 // here the server's refusal ends the handshake itself
		return e.tlsAttempt("tls12-no-client-cert", cfg)
	})
	r.Run("tls/wrong_san_handshake_fails", func() error {
		cfg, err := e.clientConfig("not-podvm-server", e.pki.clientGood)
		if err != nil {
			return err
		}
		raw, err := net.DialTimeout("tcp", e.fwd.Addr(), 5*time.Second)
		if err != nil {
			return err
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(refusalBound))
		err = tls.Client(raw, cfg).Handshake()
		var hostErr x509.HostnameError
		if err == nil {
			return fmt.Errorf("handshake with ServerName not-podvm-server succeeded")
		}
		if !errors.As(err, &hostErr) {
			return fmt.Errorf("handshake failed, but not on the name: %v", err)
		}
		return nil
	})
	r.Run("tls/refuses_plaintext_ttrpc_client", func() error {
		conn, err := net.DialTimeout("tcp", e.fwd.Addr(), 5*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		start := time.Now()
		conn.SetDeadline(start.Add(refusalBound))
		frame, err := probeFrame("plaintext")
		if err != nil {
			return err
		}
		if err := wire.WriteFrame(conn, 1, wire.TypeRequest, 0, frame); err != nil {
			return nil // closed on us already: refused
		}
		got, err := io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("forwarder kept a plaintext client open for %v without closing (read %x)", refusalBound, got)
		}
		if len(got) >= wire.HeaderLen && got[8] == wire.TypeResponse {
			return fmt.Errorf("forwarder answered a plaintext ttrpc request: %x", got)
		}
		if e.agentSawProbe("plaintext") {
			return fmt.Errorf("plaintext probe reached the agent")
		}
		fmt.Printf("  (plaintext client closed after %v; it read %d bytes: %x, %v)\n", time.Since(start).Round(time.Millisecond), len(got), got, err)
		return nil
	})
}

// proxyRefusals swap in a forwarder with a bad server certificate: the adaptor's proxy must not
// let StartVM succeed, and no call may reach the agent through it.
func (e *env) proxyRefusals(r *harness.Runner) {
	cases := []struct {
		name  string
		files testpki.Files
	}{
		{"proxy/refuses_forwarder_cert_with_other_san", e.pki.serverOtherSAN},
		{"proxy/refuses_forwarder_cert_from_other_ca", e.pki.serverOtherCA},
	}
	for i, c := range cases {
		c := c
		id := fmt.Sprintf("badfwd-%d", i)
		r.Run(c.name, func() error {
			if e.fwdProc != nil && e.fwdProc.Running() == nil {
				if err := stopExpectZero(e.fwdProc); err != nil {
					return fmt.Errorf("stopping the good forwarder: %w", err)
				}
			}
			bad := e.fwd
			bad.Name = "bad-forwarder"
			bad.TLS = &agentchain.TLSFiles{CA: e.pki.caFile, Cert: c.files.Cert, Key: c.files.Key}
			p, err := bad.Start(30 * time.Second)
			if err != nil {
				return fmt.Errorf("starting the bad forwarder: %w", err)
			}
			e.cleanup.Add(p.Kill)
			defer agentchain.Stop(p, 15*time.Second)
			checks := len(e.agent.CallsTo(wire.MethodCheck))
			if _, err := e.adaptor.CreateVM(agentchain.SandboxRequest(id, "bad-forwarder-pod", "0")); err != nil {
				return fmt.Errorf("CreateVM: %w", err)
			}
			startErr := e.adaptor.StartVM(id, 6*time.Second)
			stopErr := e.adaptor.StopVM(id)
			if startErr == nil {
				return fmt.Errorf("StartVM succeeded against a forwarder with a bad certificate")
			}
			if n := len(e.agent.CallsTo(wire.MethodCheck)); n != checks {
				return fmt.Errorf("%d Health/Check calls reached the agent through the bad forwarder", n-checks)
			}
			if stopErr != nil {
				return fmt.Errorf("StopVM after the refused start: %w", stopErr)
			}
			if _, err := os.Lstat(e.adaptor.SandboxDir(id)); !os.IsNotExist(err) {
				return fmt.Errorf("%s left after StopVM", e.adaptor.SandboxDir(id))
			}
			fmt.Printf("  (%s: StartVM failed with %v: %v)\n", c.name, harness.Code(startErr), startErr)
			return nil
		})
	}
	r.Run("proxy/good_forwarder_back", func() error {
		if e.fwdProc.Running() == nil {
			return nil
		}
		return e.startForwarder(e.fwd)
	})
}
