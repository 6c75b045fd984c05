package stomp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/sinkbus/sinkbus/netguard"
	"github.com/sinkbus/sinkbus/sinks"
)

// Failures of a send that never reached a receipt. All are retryable: the
// event may or may not have reached the broker, and a retry on a healthy
// connection delivers it at least once. Test with errors.Is.
var (
	// ErrNotConnected: no connection to any broker address is up; the error
	// also wraps the last connect failure.
	ErrNotConnected = errors.New("sinkbus: stomp: not connected")
	// ErrReceiptTimeout: the broker did not confirm the send within the
	// receipt timeout. The connection is dropped and redialled.
	ErrReceiptTimeout = errors.New("sinkbus: stomp: no receipt within the receipt timeout")
	// ErrConnectionLost: the connection dropped before the send's receipt
	// came. OnDisconnect also gets it for an idle connection that died.
	ErrConnectionLost = errors.New("sinkbus: stomp: connection lost")
	// ErrConnectTimeout: a connect attempt (dial, TLS handshake, CONNECT)
	// did not end within the connect timeout; the next address is tried.
	ErrConnectTimeout = errors.New("sinkbus: stomp: no CONNECTED within the connect timeout")
)

// Error is a failed connect or send. It is permanent
// (errors.Is(err, sinks.ErrPermanent)) when no retry can succeed: the broker
// refused the credentials, the virtual host or the destination, or the TLS
// certificate does not verify.
type Error struct {
	// Op is "connect" or "send".
	Op string
	// Address is the broker address the attempt used; empty for a send that
	// found no connection.
	Address string
	// Destination is where a send went; empty for a connect.
	Destination string
	// Message and Detail are the message header and the first line of the
	// body of the broker's ERROR frame; both empty when the failure was not
	// an ERROR frame.
	Message, Detail string
	// Permanent is the class decided where the failure happened.
	Permanent bool
	// Err is the underlying error.
	Err error
}

const errPrefix = "sinkbus: stomp: "

// Error says what failed where: "sinkbus: stomp: connect to
// stomp://mq:61613: broker error: <the broker's message>" or "sinkbus:
// stomp: send to /queue/q via stomp://mq:61613: <cause>". It holds addresses
// and destinations, never credentials.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(errPrefix)
	if e.Op == "connect" {
		b.WriteString("connect to " + e.Address)
	} else {
		b.WriteString("send to " + e.Destination)
		if e.Address != "" {
			b.WriteString(" via " + e.Address)
		}
	}
	switch {
	case e.Message != "":
		b.WriteString(": broker error: " + e.Message)
		if e.Detail != "" && e.Detail != e.Message {
			b.WriteString(": " + e.Detail)
		}
	case e.Err != nil:
		b.WriteString(": " + bare(e.Err))
	}
	return b.String()
}

// Unwrap returns Err, and sinks.ErrPermanent when the error is permanent.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	if e.Permanent {
		errs = append(errs, sinks.ErrPermanent)
	}
	return errs
}

// bare is err's text without the package prefix, for nesting.
func bare(err error) string {
	return strings.TrimPrefix(err.Error(), errPrefix)
}

// notConnectedError is ErrNotConnected with the last connect failure.
type notConnectedError struct{ last error }

func (e *notConnectedError) Error() string {
	if e.last == nil {
		return bare(ErrNotConnected)
	}
	return bare(ErrNotConnected) + ": " + bare(e.last)
}

func (e *notConnectedError) Unwrap() []error {
	if e.last == nil {
		return []error{ErrNotConnected}
	}
	return []error{ErrNotConnected, e.last}
}

// permanentPhrases are what brokers put in the ERROR frames that no retry
// can fix (lower case). Checked on the message header and the body:
// RabbitMQ answers "Bad CONNECT" and says why in the body.
var permanentPhrases = []string{
	// Credentials and permissions: RabbitMQ "Access refused for user",
	// "ACCESS_REFUSED - access to exchange ...", "Virtual host '/x' access
	// denied"; ActiveMQ "User name [u] or password is invalid.", "User u is
	// not authorized to write to: queue://q"; Artemis "AMQ229031: Unable to
	// validate user", "does not have permission='SEND'".
	"access refused", "access_refused", "access denied", "password is invalid",
	"not authorized", "not authorised", "unauthorized", "authentication failed",
	"invalid credentials", "bad credentials", "login failed",
	"unable to validate user", "does not have permission",
	// Destinations: RabbitMQ "Unknown destination" / "'/x' is not a valid
	// destination", "NOT_FOUND - no exchange 'x'", "PRECONDITION_FAILED"
	// (queue arguments or user-id that do not match); ActiveMQ "Illegal
	// destination name"; frames over the broker's size limit.
	"unknown destination", "not a valid destination", "invalid destination",
	"illegal destination", "not_found", "precondition_failed", "too large",
}

// permanentText reports whether an ERROR frame's text says no retry can
// succeed. go-stomp turns a dropped connection into ERROR frames of its own
// ("connection closed", "read timeout", a write error): none of them holds
// these phrases, so they stay retryable.
func permanentText(message, body string) bool {
	text := strings.ToLower(message + "\n" + body)
	for _, p := range permanentPhrases {
		if strings.Contains(text, p) {
			return true
		}
	}
	return false
}

// errorFrame returns the ERROR frame err carries, if any.
func errorFrame(err error) (*frame.Frame, bool) {
	var se stomp.Error
	if errors.As(err, &se) && se.Frame != nil && se.Frame.Command == frame.ERROR {
		return se.Frame, true
	}
	return nil, false
}

// isLocalFrame reports whether f is one that go-stomp made up for a broken
// connection: a message header and nothing else. Brokers' ERROR frames carry
// a content type or a body.
func isLocalFrame(f *frame.Frame) bool {
	return f.Header.Len() == 1 && len(f.Body) == 0
}

// firstLine returns the first non-empty line of s, trimmed to 300 bytes: an
// ActiveMQ ERROR body may hold a whole Java stack trace.
func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if len(line) > 300 {
			n := 300
			for n > 0 && !utf8.RuneStart(line[n]) {
				n--
			}
			line = line[:n] + "..."
		}
		return line
	}
	return ""
}

// connectError classifies a failed dial or CONNECT of addr.
func connectError(addr string, err error) *Error {
	e := &Error{Op: "connect", Address: addr, Err: err}
	if f, ok := errorFrame(err); ok {
		e.Message = firstLine(f.Header.Get(frame.Message))
		e.Detail = firstLine(string(f.Body))
		e.Permanent = permanentText(e.Message, string(f.Body))
		return e
	}
	var (
		verify *tls.CertificateVerificationError
		record tls.RecordHeaderError
		unk    x509.UnknownAuthorityError
		host   x509.HostnameError
		inval  x509.CertificateInvalidError
	)
	// A certificate that does not verify, a TLS address that does not speak
	// TLS, or an address the network guard refuses, fails every attempt
	// until the configuration changes.
	e.Permanent = errors.As(err, &verify) || errors.As(err, &record) ||
		errors.As(err, &unk) || errors.As(err, &host) || errors.As(err, &inval) ||
		errors.Is(err, netguard.ErrBlocked)
	return e
}

// sendError classifies what go-stomp's Send returned. sent is false when
// nothing reached the wire (the connection was already closed), so the send
// may go over another connection at once.
func sendError(dest, addr string, err error) (e *Error, sent bool) {
	e = &Error{Op: "send", Address: addr, Destination: dest, Err: err}
	switch {
	case errors.Is(err, stomp.ErrAlreadyClosed), errors.Is(err, stomp.ErrMsgSendTimeout):
		e.Err = ErrConnectionLost
		return e, false
	case errors.Is(err, stomp.ErrMsgReceiptTimeout):
		e.Err = ErrReceiptTimeout
		return e, true
	}
	if f, ok := errorFrame(err); ok {
		msg, body := f.Header.Get(frame.Message), string(f.Body)
		if isLocalFrame(f) && !permanentText(msg, body) {
			e.Err = &lostError{cause: msg}
			return e, true
		}
		e.Message, e.Detail = firstLine(msg), firstLine(body)
		e.Permanent = permanentText(msg, body)
	}
	return e, true
}

// lostError is ErrConnectionLost with go-stomp's reason ("read timeout").
type lostError struct{ cause string }

func (e *lostError) Error() string {
	if e.cause == "" {
		return bare(ErrConnectionLost)
	}
	return bare(ErrConnectionLost) + ": " + e.cause
}

func (e *lostError) Unwrap() error { return ErrConnectionLost }
