package sinks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Class is how a delivery attempt ended. A sink decides it once, where the
// failure happens; every later layer (retry, breaker, rejected store, log)
// reads that one decision through Classify.
type Class int

const (
	// ClassDelivered: the destination accepted the event.
	ClassDelivered Class = iota
	// ClassRetryable: a later attempt may succeed (network error, timeout, 408,
	// 429, 5XX, broker disconnect).
	ClassRetryable
	// ClassPermanent: no attempt will ever succeed for this event (other 4XX,
	// payload too large, invalid destination). It goes to the rejected store.
	ClassPermanent
)

func (c Class) String() string {
	switch c {
	case ClassDelivered:
		return "delivered"
	case ClassRetryable:
		return "retryable"
	case ClassPermanent:
		return "permanent"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// ErrPermanent marks a failure that must not be retried. Test with errors.Is.
var ErrPermanent = errors.New("sinkbus: permanent failure")

// ErrClosed is returned by a sink's Publish after Close.
var ErrClosed = errors.New("sinkbus: sink closed")

// PermanentError wraps Err as a permanent failure.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error and ErrPermanent.
func (e *PermanentError) Unwrap() []error { return []error{e.Err, ErrPermanent} }

// Permanent marks err as permanent. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// RetryAfterError is a retryable failure that names the earliest moment for
// the next attempt (an HTTP Retry-After, a broker's back-pressure hint).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter marks err as retryable no sooner than after d.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, After: d}
}

// StatusError is a response status from a destination that speaks HTTP-like
// status codes. Its class follows the status: 2XX never becomes an error;
// 408, 429 and 5XX are retryable; everything else is permanent.
type StatusError struct {
	// Destination names where the request went, without credentials.
	Destination string
	StatusCode  int
	// RetryAfter is the destination's Retry-After, zero when it sent none.
	RetryAfter time.Duration
	// Body is the start of the response body, for the log and rejected store.
	Body string
}

func (e *StatusError) Error() string {
	reason := http.StatusText(e.StatusCode)
	if reason == "" {
		reason = "unexpected status"
	}
	msg := fmt.Sprintf("Request to URL %s failed. Reason: %s (HTTP status code %d)",
		e.Destination, strings.ToLower(reason), e.StatusCode)
	if e.Body != "" {
		msg += ". Response: " + e.Body
	}
	return msg
}

// Class returns the class the status code implies.
func (e *StatusError) Class() Class {
	switch {
	case e.StatusCode >= 200 && e.StatusCode < 300:
		return ClassDelivered
	case e.StatusCode == http.StatusRequestTimeout,
		e.StatusCode == http.StatusTooManyRequests,
		e.StatusCode >= 500:
		return ClassRetryable
	}
	return ClassPermanent
}

// Classify returns the class of an attempt's error and, for retryable
// failures, the wait the destination asked for (zero when none).
// nil is Delivered; unknown errors, timeouts and cancellations of the attempt
// are Retryable: a failure nobody classified must never drop an event.
func Classify(err error) (Class, time.Duration) {
	if err == nil {
		return ClassDelivered, 0
	}
	if errors.Is(err, ErrPermanent) {
		return ClassPermanent, 0
	}
	var after time.Duration
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		after = ra.After
	}
	var se *StatusError
	if errors.As(err, &se) {
		if se.RetryAfter > after {
			after = se.RetryAfter
		}
		if c := se.Class(); c != ClassRetryable {
			return c, 0
		}
	}
	if after < 0 {
		after = 0
	}
	return ClassRetryable, after
}

// IsTimeout reports whether err is an attempt running out of time.
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
