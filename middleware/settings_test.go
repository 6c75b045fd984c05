package middleware_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/middleware"
)

func defaults() middleware.Settings {
	return middleware.Settings{
		Retry: middleware.RetryPolicy{
			InitialInterval: 500 * time.Millisecond, MaxInterval: 5 * time.Minute, Multiplier: 2,
			RandomizationFactor: 0.5, MaxAttempts: 30, MaxElapsedTime: 24 * time.Hour,
		},
		Breaker: middleware.BreakerPolicy{WarnAfter: 10, OpenAfter: 30, CoolDown: 5 * time.Second, MaxCoolDown: 10 * time.Minute},
	}
}

func TestSettings_SetDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   middleware.Settings
		want func(*middleware.Settings)
	}{
		{"zero", middleware.Settings{}, func(*middleware.Settings) {}},
		{"set fields kept", middleware.Settings{
			Timeout: 3 * time.Second,
			Retry:   middleware.RetryPolicy{MaxAttempts: 5, RandomizationFactor: -1},
			Breaker: middleware.BreakerPolicy{OpenAfter: 50, SkipWhileOpen: true},
		}, func(s *middleware.Settings) {
			s.Timeout = 3 * time.Second
			s.Retry.MaxAttempts, s.Retry.RandomizationFactor = 5, -1
			s.Breaker.OpenAfter, s.Breaker.SkipWhileOpen = 50, true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := defaults()
			tc.want(&want)
			got := tc.in
			got.SetDefaults()
			assert.Equal(t, want, got)
			require.NoError(t, got.Validate())
		})
	}
}

func TestSettings_Validate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*middleware.Settings)
		want   []string
	}{
		{"defaults", func(*middleware.Settings) {}, nil},
		{"timeout 3s", func(s *middleware.Settings) { s.Timeout = 3 * time.Second }, nil},
		{"timeout 1ms", func(s *middleware.Settings) { s.Timeout = time.Millisecond }, nil},
		{"timeout too short", func(s *middleware.Settings) { s.Timeout = time.Microsecond },
			[]string{"timeout: must be at least 1ms"}},
		{"timeout negative", func(s *middleware.Settings) { s.Timeout = -time.Second },
			[]string{"timeout: must not be negative"}},
		{"no jitter", func(s *middleware.Settings) { s.Retry.RandomizationFactor = -1 }, nil},
		{"one attempt", func(s *middleware.Settings) { s.Retry.MaxAttempts = 1 }, nil},
		{"every retry field", func(s *middleware.Settings) {
			s.Retry = middleware.RetryPolicy{InitialInterval: -1, MaxInterval: -2, Multiplier: 0.5,
				RandomizationFactor: 1, MaxAttempts: 0, MaxElapsedTime: -1}
		}, []string{
			"retry.initial_interval: must be positive",
			"retry.max_interval: must be at least retry.initial_interval",
			"retry.multiplier: must be a finite number >= 1",
			"retry.randomization_factor: must be less than 1",
			"retry.max_attempts: must be >= 1",
			"retry.max_elapsed_time: must be positive",
		}},
		{"not a number", func(s *middleware.Settings) {
			s.Retry.Multiplier, s.Retry.RandomizationFactor = math.NaN(), math.NaN()
		}, []string{
			"retry.multiplier: must be a finite number >= 1",
			"retry.randomization_factor: must be less than 1",
		}},
		{"infinite multiplier", func(s *middleware.Settings) { s.Retry.Multiplier = math.Inf(1) },
			[]string{"retry.multiplier: must be a finite number >= 1"}},
		{"every breaker field", func(s *middleware.Settings) {
			s.Breaker = middleware.BreakerPolicy{WarnAfter: 0, OpenAfter: -1, CoolDown: 0, MaxCoolDown: -1}
		}, []string{
			"breaker.open_after: must be >= 1",
			"breaker.warn_after: must be >= 1",
			"breaker.cool_down: must be positive",
			"breaker.max_cool_down: must be at least breaker.cool_down",
		}},
		{"warning after opening", func(s *middleware.Settings) { s.Breaker.WarnAfter = 31 },
			[]string{"breaker.warn_after: must not exceed breaker.open_after"}},
		{"warning at opening", func(s *middleware.Settings) { s.Breaker.WarnAfter = 30 }, nil},
		{"commerce layer", func(s *middleware.Settings) {
			s.Timeout = 3 * time.Second
			s.Breaker.SkipWhileOpen = true
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := defaults()
			tc.change(&s)
			err := s.Validate()
			var got []string
			for _, fe := range field.Errors(err) {
				got = append(got, fe.Error())
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestSettings_JSON(t *testing.T) {
	var s middleware.Settings
	require.NoError(t, json.Unmarshal([]byte(`{
		"timeout": "3s",
		"retry": {"initial_interval": 1, "max_attempts": 5, "randomization_factor": -1},
		"breaker": {"open_after": 30, "cool_down": "1m", "skip_while_open": true}
	}`), &s))
	assert.Equal(t, middleware.Settings{
		Timeout: 3 * time.Second,
		Retry:   middleware.RetryPolicy{InitialInterval: time.Second, MaxAttempts: 5, RandomizationFactor: -1},
		Breaker: middleware.BreakerPolicy{OpenAfter: 30, CoolDown: time.Minute, SkipWhileOpen: true},
	}, s)

	full := defaults()
	full.Timeout = 10 * time.Second
	b, err := json.Marshal(full)
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"timeout": "10s",
		"retry": {"initial_interval": "500ms", "max_interval": "5m0s", "multiplier": 2, "randomization_factor": 0.5,
			"max_attempts": 30, "max_elapsed_time": "24h0m0s"},
		"breaker": {"warn_after": 10, "open_after": 30, "cool_down": "5s", "max_cool_down": "10m0s"}
	}`, string(b))
	var back middleware.Settings
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, full, back)
}

func TestSettings_JSON_keeps_absent_fields(t *testing.T) {
	s := defaults()
	require.NoError(t, json.Unmarshal([]byte(`{"retry":{"max_attempts":3}}`), &s))
	want := defaults()
	want.Retry.MaxAttempts = 3
	assert.Equal(t, want, s)
}

func TestSettings_JSON_errors_name_the_field(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"retry":{"max_attempts":"many"}}`, "retry.max_attempts: must be an integer, not a string"},
		{`{"breaker":{"cool_down":"soon"}}`, `breaker.cool_down: must be a duration such as "30s"`},
		{`{"timeout":true}`, `timeout: must be a duration such as "30s"`},
		{`{"retries":{}}`, "retries: unknown field"},
		{`{"breaker":{"open":1}}`, "breaker.open: unknown field"},
		{`{"retry":{"max_attempts":1,"jitter":1}}`, "retry.jitter: unknown field"},
		{`{"retry":[]}`, "retry: must be an object, not an array"},
		{`[`, "invalid JSON: unexpected EOF"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var s middleware.Settings
			err := s.UnmarshalJSON([]byte(tc.in))
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
		})
	}
}

func FuzzSettings_UnmarshalJSON(f *testing.F) {
	f.Add([]byte(`{"timeout":"3s","retry":{"max_attempts":5},"breaker":{"cool_down":30}}`))
	f.Add([]byte(`{"retry":{"multiplier":1e308,"max_interval":"-1s"}}`))
	f.Add([]byte(`{"breaker":{"disabled":true,"skip_while_open":true}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s middleware.Settings
		if err := json.Unmarshal(data, &s); err != nil {
			return
		}
		s.SetDefaults()
		if s.Validate() != nil {
			return
		}
		b, err := json.Marshal(s)
		require.NoError(t, err)
		var back middleware.Settings
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, s, back)
	})
}
