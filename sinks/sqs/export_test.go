package sqs

import "github.com/ThreeDotsLabs/watermill/message"

// GroupID returns the MessageGroupId the sink gives msg under the
// FIFOGroupKey key, for the fuzz tests.
func GroupID(key string, msg *message.Message) (string, error) {
	k, err := parseGroupKey(key)
	if err != nil {
		return "", err
	}
	return k.group(msg), nil
}

// BatchReady is batchReady, for its table test.
var BatchReady = batchReady
