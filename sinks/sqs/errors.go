package sqs

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/sinkbus/sinkbus/netguard"
	"github.com/sinkbus/sinkbus/sinks"
)

// ErrMessageTooLarge is the permanent failure of an event whose SQS message
// (body plus attributes) exceeds Config.MaxMessageSize. Test with errors.Is.
var ErrMessageTooLarge = errors.New("sinkbus: sqs: message too large")

// ErrNotSent is the retryable failure of a message that a Publish of
// several messages to a FIFO queue did not send because an earlier one
// failed (see Publisher.Publish). Test with errors.Is.
var ErrNotSent = errors.New("sinkbus: sqs: not sent after an earlier message of the same call failed")

// PublishError is the error of a Publish of several messages of which some
// failed; the others are in the queue. Classify and errors.Is see Err.
type PublishError struct {
	// Failed are the messages to send again, in the order given.
	Failed []*message.Message
	// Errs holds the error of each of Failed.
	Errs []error
	// Err is the first retryable error of Errs, else the first.
	Err error
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("%v (%d messages failed)", e.Err, len(e.Failed))
}

// Unwrap returns Err.
func (e *PublishError) Unwrap() error { return e.Err }

// Error is a send that SQS refused or that did not reach it. It is
// permanent (errors.Is(err, sinks.ErrPermanent)) when SQS said no attempt
// can succeed: an invalid message, a missing queue, refused credentials.
type Error struct {
	// Queue is the queue name; empty when Classify built the error.
	Queue string
	// Code is the AWS error code ("QueueDoesNotExist", "ThrottlingException");
	// empty when no answer came (network failure, timeout).
	Code string
	// RequestID is SQS's request id, for AWS support; may be empty.
	RequestID string
	// Permanent is the class Classify decided.
	Permanent bool
	// Err is the SDK's error.
	Err error
}

func (e *Error) Error() string {
	s := "sinkbus: sqs: send"
	if e.Queue != "" {
		s += " to queue " + e.Queue
	}
	s += " failed: "
	var api smithy.APIError
	switch {
	case e.Code != "" && errors.As(e.Err, &api):
		s += e.Code
		if m := api.ErrorMessage(); m != "" {
			s += ": " + m
		}
	case e.Code != "":
		s += e.Code + ": " + e.Err.Error()
	default:
		s += e.Err.Error()
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// Unwrap returns Err, and sinks.ErrPermanent when the error is permanent.
func (e *Error) Unwrap() []error {
	if e.Permanent {
		return []error{e.Err, sinks.ErrPermanent}
	}
	return []error{e.Err}
}

// Codes of SQS errors no retry can fix, whatever the HTTP status says.
var permanentCodes = map[string]bool{
	"InvalidParameterValue":                       true,
	"InvalidParameterValueException":              true,
	"InvalidParameterCombination":                 true,
	"InvalidMessageContents":                      true,
	"InvalidAttributeName":                        true,
	"InvalidAttributeValue":                       true,
	"MissingParameter":                            true,
	"UnsupportedOperation":                        true,
	"AWS.SimpleQueueService.UnsupportedOperation": true,
	"BatchRequestTooLong":                         true,
	"AWS.SimpleQueueService.BatchRequestTooLong":  true,
	"TooManyEntriesInBatchRequest":                true,
	"BatchEntryIdsNotDistinct":                    true,
	"InvalidBatchEntryId":                         true,
	"EmptyBatchRequest":                           true,
}

// Codes that concern the queue or the credentials rather than one message:
// permanent, and a batch failing with one fails for every entry.
var queueCodes = map[string]bool{
	"QueueDoesNotExist":                       true,
	"AWS.SimpleQueueService.NonExistentQueue": true,
	"AccessDenied":                            true,
	"AccessDeniedException":                   true,
	"InvalidClientTokenId":                    true,
	"UnrecognizedClientException":             true,
	"SignatureDoesNotMatch":                   true,
	"IncompleteSignature":                     true,
	"MissingAuthenticationToken":              true,
	"InvalidSecurity":                         true,
	"InvalidAddress":                          true,
	"OptInRequired":                           true,
	"KmsAccessDenied":                         true,
	"KmsDisabled":                             true,
	"KmsInvalidKeyUsage":                      true,
	"KmsInvalidState":                         true,
	"KmsNotFound":                             true,
	"KmsOptInRequired":                        true,
}

// Codes that a later attempt may get past, beyond the SDK's own throttling
// and timeout lists (retry.DefaultThrottleErrorCodes, DefaultRetryableErrorCodes).
var retryableCodes = map[string]bool{
	"KmsThrottled":                true,
	"KMS.ThrottlingException":     true,
	"OverLimit":                   true,
	"ServiceUnavailable":          true,
	"ServiceUnavailableException": true,
	"InternalError":               true,
	"InternalFailure":             true,
	"InternalServerError":         true,
	"ExpiredToken":                true, // temporary credentials are refreshed
	"ExpiredTokenException":       true,
	"RequestExpired":              true, // clock skew, corrected by the SDK
}

// Classify turns an error of the SQS client into an *Error carrying the
// class sinkbus gives it. Throttling, 5XX, timeouts and network errors are
// retryable; invalid messages, missing queues and refused credentials are
// permanent. A code nobody listed follows the HTTP status (4XX other than
// 408 and 429 permanent) or, without one, the fault SQS reported (the
// sender's fault permanent). An endpoint the network guard refuses is
// permanent. Classify(nil) is nil; an *Error is returned
// as is; a cancelled or expired context stays retryable.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	e := &Error{Err: err}
	var re *awshttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		e.RequestID = re.ServiceRequestID()
		status = re.HTTPStatusCode()
	}
	if errors.Is(err, netguard.ErrBlocked) {
		e.Permanent = true // the network guard refused the endpoint's address
		return e
	}
	var api smithy.APIError
	if !errors.As(err, &api) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return e
	}
	e.Code = api.ErrorCode()
	_, throttle := retry.DefaultThrottleErrorCodes[e.Code]
	_, timeout := retry.DefaultRetryableErrorCodes[e.Code]
	switch {
	case throttle || timeout || retryableCodes[e.Code]:
	case permanentCodes[e.Code] || queueCodes[e.Code]:
		e.Permanent = true
	case status != 0:
		e.Permanent = (&sinks.StatusError{StatusCode: status}).Class() == sinks.ClassPermanent
	default:
		e.Permanent = api.ErrorFault() == smithy.FaultClient
	}
	return e
}

// concernsQueue reports whether err is about the queue or the credentials
// rather than one message.
func concernsQueue(err error) bool {
	var e *Error
	return errors.As(err, &e) && queueCodes[e.Code]
}

// queueMissing reports whether err says the queue does not exist.
func queueMissing(err error) bool {
	var e *Error
	return errors.As(err, &e) &&
		(e.Code == "QueueDoesNotExist" || e.Code == "AWS.SimpleQueueService.NonExistentQueue")
}

func tooLarge(size, limit int) error {
	return sinks.Permanent(fmt.Errorf("%w: %d bytes with attributes, the limit is %d (max_message_size)",
		ErrMessageTooLarge, size, limit))
}
