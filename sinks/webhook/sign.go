package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"strconv"
	"strings"
	"sync"
)

// secretPrefix marks a Standard Webhooks secret: base64 after the prefix.
const secretPrefix = "whsec_"

// decodeSecret returns the HMAC key of a secret: the base64-decoded part of
// a "whsec_" secret, else the secret's own bytes. Its errors never quote the
// secret.
func decodeSecret(secret string) ([]byte, error) {
	if secret == "" {
		return nil, errors.New("must not be empty")
	}
	rest, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(rest)
	}
	if err != nil || len(key) == 0 {
		return nil, errors.New("whsec_ secret is not valid base64")
	}
	return key, nil
}

// decodeSecrets returns the keys of secrets, in order.
func decodeSecrets(secrets []string) ([][]byte, error) {
	keys := make([][]byte, 0, len(secrets))
	for i, s := range secrets {
		k, err := decodeSecret(s)
		if err != nil {
			return nil, errors.New("sinkbus: webhook secret " + strconv.Itoa(i) + ": " + err.Error())
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// signer computes HMAC-SHA256 under one key, reusing hash states: an
// hmac.New per request costs five allocations.
type signer struct{ pool sync.Pool }

type macState struct {
	h      hash.Hash
	sum    [sha256.Size]byte
	prefix []byte // "id.timestamp." of the request being signed
}

func newSigner(key []byte) *signer {
	key = append([]byte(nil), key...)
	s := &signer{}
	s.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key)} }
	return s
}

// appendStandard appends "v1,<base64 HMAC(id.timestamp.body)>" to dst.
// timestamp may alias dst: it is read before dst grows.
func (s *signer) appendStandard(dst []byte, id string, timestamp, body []byte) []byte {
	m := s.pool.Get().(*macState)
	m.h.Reset()
	m.prefix = appendSignedPrefix(m.prefix[:0], id, timestamp)
	m.h.Write(m.prefix)
	m.h.Write(body)
	sum := m.h.Sum(m.sum[:0])
	dst = append(dst, "v1,"...)
	dst = base64.StdEncoding.AppendEncode(dst, sum)
	s.pool.Put(m)
	return dst
}

// appendHex appends the hex HMAC of body to dst.
func (s *signer) appendHex(dst []byte, body []byte) []byte {
	m := s.pool.Get().(*macState)
	m.h.Reset()
	m.h.Write(body)
	dst = hex.AppendEncode(dst, m.h.Sum(m.sum[:0]))
	s.pool.Put(m)
	return dst
}

// appendSignedPrefix appends "id.timestamp.", what Standard Webhooks sign
// before the body.
func appendSignedPrefix(dst []byte, id string, timestamp []byte) []byte {
	dst = append(dst, id...)
	dst = append(dst, '.')
	dst = append(dst, timestamp...)
	return append(dst, '.')
}
