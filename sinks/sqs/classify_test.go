package sqs_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

// sdkError wraps err as the SDK returns a failed SendMessage: an operation
// error around an HTTP response error.
func sdkError(status int, err error) error {
	return &smithy.OperationError{ServiceID: "SQS", OperationName: "SendMessage", Err: &awshttp.ResponseError{
		RequestID: "req-1",
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      err,
		},
	}}
}

func api(code string, fault smithy.ErrorFault) error {
	return &smithy.GenericAPIError{Code: code, Message: "message of " + code, Fault: fault}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want sinks.Class
		code string // also expected in the error text
	}{
		{"nil", nil, sinks.ClassDelivered, ""},
		{"throttling", api("ThrottlingException", smithy.FaultClient), sinks.ClassRetryable, "ThrottlingException"},
		{"request throttled", sdkError(403, api("RequestThrottled", smithy.FaultClient)), sinks.ClassRetryable, "RequestThrottled"},
		{"kms throttled", sdkError(400, api("KmsThrottled", smithy.FaultClient)), sinks.ClassRetryable, "KmsThrottled"},
		{"in-flight limit", sdkError(403, api("OverLimit", smithy.FaultClient)), sinks.ClassRetryable, "OverLimit"},
		{"internal error", sdkError(500, api("InternalError", smithy.FaultServer)), sinks.ClassRetryable, "InternalError"},
		{"unavailable", sdkError(503, api("ServiceUnavailable", smithy.FaultServer)), sinks.ClassRetryable, "ServiceUnavailable"},
		{"request timeout", api("RequestTimeout", smithy.FaultClient), sinks.ClassRetryable, "RequestTimeout"},
		{"expired token", sdkError(403, api("ExpiredToken", smithy.FaultClient)), sinks.ClassRetryable, "ExpiredToken"},
		{"unknown 5XX", sdkError(502, api("UnknownError", smithy.FaultUnknown)), sinks.ClassRetryable, "UnknownError"},
		{"unknown 429", sdkError(429, api("SomethingNew", smithy.FaultClient)), sinks.ClassRetryable, "SomethingNew"},
		{"unknown server fault", api("SomethingNew", smithy.FaultServer), sinks.ClassRetryable, "SomethingNew"},
		{"unknown fault", api("SomethingNew", smithy.FaultUnknown), sinks.ClassRetryable, "SomethingNew"},

		{"invalid parameter", sdkError(400, api("InvalidParameterValue", smithy.FaultClient)), sinks.ClassPermanent, "InvalidParameterValue"},
		{"invalid contents", api("InvalidMessageContents", smithy.FaultClient), sinks.ClassPermanent, "InvalidMessageContents"},
		{"queue does not exist", sdkError(400, &types.QueueDoesNotExist{Message: ptr("The specified queue does not exist.")}), sinks.ClassPermanent, "QueueDoesNotExist"},
		{"non-existent queue", sdkError(400, &types.QueueDoesNotExist{ErrorCodeOverride: ptr("AWS.SimpleQueueService.NonExistentQueue")}), sinks.ClassPermanent, "AWS.SimpleQueueService.NonExistentQueue"},
		{"access denied", sdkError(403, api("AccessDenied", smithy.FaultClient)), sinks.ClassPermanent, "AccessDenied"},
		{"invalid client token", sdkError(403, api("InvalidClientTokenId", smithy.FaultClient)), sinks.ClassPermanent, "InvalidClientTokenId"},
		{"signature", sdkError(403, api("SignatureDoesNotMatch", smithy.FaultClient)), sinks.ClassPermanent, "SignatureDoesNotMatch"},
		{"kms disabled", api("KmsDisabled", smithy.FaultClient), sinks.ClassPermanent, "KmsDisabled"},
		{"batch too long", api("AWS.SimpleQueueService.BatchRequestTooLong", smithy.FaultClient), sinks.ClassPermanent, "AWS.SimpleQueueService.BatchRequestTooLong"},
		{"permanent code despite 5XX", sdkError(500, api("InvalidParameterValue", smithy.FaultServer)), sinks.ClassPermanent, "InvalidParameterValue"},
		{"unknown 4XX", sdkError(400, api("SomethingNew", smithy.FaultUnknown)), sinks.ClassPermanent, "SomethingNew"},
		{"unknown client fault", api("SomethingNew", smithy.FaultClient), sinks.ClassPermanent, "SomethingNew"},

		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, sinks.ClassRetryable, ""},
		{"deadline", &smithy.OperationError{ServiceID: "SQS", OperationName: "SendMessage", Err: context.DeadlineExceeded}, sinks.ClassRetryable, ""},
		{"canceled", context.Canceled, sinks.ClassRetryable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sqs.Classify(tt.err)
			class, _ := sinks.Classify(err)
			assert.Equal(t, tt.want, class, "%v", err)
			if tt.err == nil {
				require.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.err, "the SDK error stays reachable")
			var se *sqs.Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.code, se.Code)
			assert.Contains(t, err.Error(), tt.code)
			assert.Same(t, err, sqs.Classify(err), "classified once")
		})
	}
}

func TestError_text_names_queue_code_and_request(t *testing.T) {
	err := sqs.Classify(sdkError(400, &types.QueueDoesNotExist{Message: ptr("The specified queue does not exist.")}))
	var se *sqs.Error
	require.True(t, errors.As(err, &se))
	se.Queue = "orders"
	assert.Equal(t, "sinkbus: sqs: send to queue orders failed: QueueDoesNotExist: The specified queue does not exist. (request id req-1)", err.Error())
}

func ptr[T any](v T) *T { return &v }
