package middleware

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
)

// Default settings, the values SetDefaults gives to zero fields.
const (
	// DefaultTimeout is the per-attempt timeout when neither the settings nor
	// the sink name one (Elastic Path's 30 s webhook rule).
	DefaultTimeout = 30 * time.Second
	// MinTimeout is the shortest per-attempt timeout Validate accepts.
	MinTimeout = time.Millisecond
	// MaxTimeout is the longest per-attempt timeout Validate accepts, the
	// webhook sink's own limit: an attempt that waits longer holds one of
	// the integration's delivery slots for nothing.
	MaxTimeout = 5 * time.Minute

	DefaultInitialInterval     = 500 * time.Millisecond
	DefaultMaxInterval         = 5 * time.Minute
	DefaultMultiplier          = 2.0
	DefaultRandomizationFactor = 0.5
	// DefaultMaxAttempts is DefaultOpenAfter: see RetryPolicy.MaxAttempts.
	DefaultMaxAttempts    = 30
	DefaultMaxElapsedTime = 24 * time.Hour

	DefaultWarnAfter   = 10
	DefaultOpenAfter   = 30
	DefaultCoolDown    = 5 * time.Second
	DefaultMaxCoolDown = 10 * time.Minute
)

// Settings is how one integration delivers: the per-attempt timeout, the
// retry policy and the circuit breaker. Its JSON form uses snake_case names
// and durations as "30s" (or a number of seconds); unknown fields are refused.
type Settings struct {
	// Timeout bounds each attempt. Zero means the sink's own default
	// (Config.DefaultTimeout), else DefaultTimeout. At least MinTimeout,
	// at most MaxTimeout.
	Timeout time.Duration
	Retry   RetryPolicy
	Breaker BreakerPolicy
}

// RetryPolicy is the exponential backoff between attempts of one event.
type RetryPolicy struct {
	// InitialInterval is the wait after the first failure. Zero means 500ms.
	InitialInterval time.Duration
	// MaxInterval caps the growing wait (before jitter). Zero means 5m.
	MaxInterval time.Duration
	// Multiplier grows the wait after each failure. Zero means 2.
	Multiplier float64
	// RandomizationFactor spreads each wait over ±factor of it, so that
	// events failing together do not retry together. Zero means 0.5; a
	// negative value means no jitter.
	RandomizationFactor float64
	// MaxAttempts is how many attempts an event gets, the first included,
	// before it is rejected. Attempts that fail because of an outage (the
	// circuit breaker opened, or was open) do not count. Zero means 30. Keep
	// it at least the breaker's OpenAfter, as the defaults are: else a lone
	// event on a quiet integration runs out of attempts against a
	// destination that is down before its failures open the circuit.
	MaxAttempts int
	// MaxElapsedTime is how long an event is retried, counted from its first
	// failure, before it is rejected. Time the integration spends paused by
	// its circuit breaker does not count. Zero means 24h.
	MaxElapsedTime time.Duration
}

// BreakerPolicy is the per-integration circuit breaker (Commerce Layer's
// model, made lossless: an open circuit pauses deliveries instead of
// dropping them).
type BreakerPolicy struct {
	// Disabled turns the breaker off: failures are only retried.
	Disabled bool
	// WarnAfter is the number of consecutive failed attempts that triggers
	// the early warning. Zero means 10.
	WarnAfter int
	// OpenAfter is the number of consecutive failed attempts that opens the
	// circuit. Zero means 30.
	OpenAfter int
	// CoolDown is how long the circuit stays open before one attempt probes
	// the destination, and the shortest wait between probes. After a failed
	// probe the wait is a fifth of the time the circuit has been open, when
	// that is longer: a destination that recovers is found within
	// max(CoolDown, 20 % of the outage so far), with one request per probe.
	// Zero means 5s.
	CoolDown time.Duration
	// MaxCoolDown caps the wait between probes. Zero means 10m.
	MaxCoolDown time.Duration
	// SkipWhileOpen makes an open circuit skip events (acknowledged, logged
	// as event_skipped) instead of pausing them, as Commerce Layer does.
	// Events skipped are not delivered later.
	SkipWhileOpen bool
}

// probeGapShare is the share of the time open that the next probe waits:
// recovery is found within a fifth of the outage so far, and probes grow
// rarer as the outage goes on (about 30 in its first hour, then one per
// MaxCoolDown). Doubling would keep the destination waiting as long again
// as the outage had lasted.
const probeGapShare = 5

// CoolDownAfter is the wait before the next probe once a probe failed with
// the circuit open for open: a fifth of open, within CoolDown and
// MaxCoolDown (the policy's defaults applied).
func (b BreakerPolicy) CoolDownAfter(open time.Duration) time.Duration {
	b.setDefaults()
	return min(max(b.CoolDown, open/probeGapShare), b.MaxCoolDown)
}

// SetDefaults fills the zero fields with the defaults. Timeout stays zero:
// it means the sink's default, which New resolves.
func (s *Settings) SetDefaults() {
	s.Retry.setDefaults()
	s.Breaker.setDefaults()
}

func (r *RetryPolicy) setDefaults() {
	if r.InitialInterval == 0 {
		r.InitialInterval = DefaultInitialInterval
	}
	if r.MaxInterval == 0 {
		r.MaxInterval = DefaultMaxInterval
	}
	if r.Multiplier == 0 {
		r.Multiplier = DefaultMultiplier
	}
	if r.RandomizationFactor == 0 {
		r.RandomizationFactor = DefaultRandomizationFactor
	}
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.MaxElapsedTime == 0 {
		r.MaxElapsedTime = DefaultMaxElapsedTime
	}
}

func (b *BreakerPolicy) setDefaults() {
	if b.WarnAfter == 0 {
		b.WarnAfter = DefaultWarnAfter
	}
	if b.OpenAfter == 0 {
		b.OpenAfter = DefaultOpenAfter
	}
	if b.CoolDown == 0 {
		b.CoolDown = DefaultCoolDown
	}
	if b.MaxCoolDown == 0 {
		b.MaxCoolDown = DefaultMaxCoolDown
	}
}

// Validate returns every problem at once, as *field.Error values named
// by their JSON path relative to the settings ("retry.max_attempts"). Call it
// after SetDefaults: zero values are problems here.
func (s Settings) Validate() error {
	var p field.Problems
	switch {
	case s.Timeout < 0:
		p.Add("timeout", "must not be negative")
	case s.Timeout > 0 && s.Timeout < MinTimeout:
		p.Add("timeout", "must be at least %s", MinTimeout)
	case s.Timeout > MaxTimeout:
		p.Add("timeout", "must be at most %s", MaxTimeout)
	}
	s.Retry.validate(&p, "retry.")
	s.Breaker.validate(&p, "breaker.")
	return p.Err()
}

// validate adds the problems of r to p, each field named prefix+name.
func (r RetryPolicy) validate(p *field.Problems, prefix string) {
	if r.InitialInterval <= 0 {
		p.Add(prefix+"initial_interval", "must be positive")
	}
	if r.MaxInterval < r.InitialInterval {
		p.Add(prefix+"max_interval", "must be at least %sinitial_interval", prefix)
	}
	if !(r.Multiplier >= 1) || math.IsInf(r.Multiplier, 0) {
		p.Add(prefix+"multiplier", "must be a finite number >= 1")
	}
	if !(r.RandomizationFactor < 1) || math.IsInf(r.RandomizationFactor, 0) {
		p.Add(prefix+"randomization_factor", "must be less than 1")
	}
	if r.MaxAttempts < 1 {
		p.Add(prefix+"max_attempts", "must be >= 1")
	}
	if r.MaxElapsedTime <= 0 {
		p.Add(prefix+"max_elapsed_time", "must be positive")
	}
}

// validate adds the problems of b to p, each field named prefix+name.
func (b BreakerPolicy) validate(p *field.Problems, prefix string) {
	if b.OpenAfter < 1 {
		p.Add(prefix+"open_after", "must be >= 1")
	}
	if b.WarnAfter < 1 {
		p.Add(prefix+"warn_after", "must be >= 1")
	} else if b.OpenAfter >= 1 && b.WarnAfter > b.OpenAfter {
		p.Add(prefix+"warn_after", "must not exceed %sopen_after", prefix)
	}
	if b.CoolDown <= 0 {
		p.Add(prefix+"cool_down", "must be positive")
	}
	if b.MaxCoolDown < b.CoolDown {
		p.Add(prefix+"max_cool_down", "must be at least %scool_down", prefix)
	}
}

// settingsJSON is the JSON form of Settings. One flat tree of plain structs,
// so that decoding errors carry the whole path ("retry.max_attempts").
type settingsJSON struct {
	Timeout sinks.Duration `json:"timeout,omitempty"`
	Retry   struct {
		InitialInterval     sinks.Duration `json:"initial_interval,omitempty"`
		MaxInterval         sinks.Duration `json:"max_interval,omitempty"`
		Multiplier          float64        `json:"multiplier,omitempty"`
		RandomizationFactor float64        `json:"randomization_factor,omitempty"`
		MaxAttempts         int            `json:"max_attempts,omitempty"`
		MaxElapsedTime      sinks.Duration `json:"max_elapsed_time,omitempty"`
	} `json:"retry"`
	Breaker struct {
		Disabled      bool           `json:"disabled,omitempty"`
		WarnAfter     int            `json:"warn_after,omitempty"`
		OpenAfter     int            `json:"open_after,omitempty"`
		CoolDown      sinks.Duration `json:"cool_down,omitempty"`
		MaxCoolDown   sinks.Duration `json:"max_cool_down,omitempty"`
		SkipWhileOpen bool           `json:"skip_while_open,omitempty"`
	} `json:"breaker"`
}

func (s Settings) toJSON() settingsJSON {
	var j settingsJSON
	j.Timeout = sinks.Duration(s.Timeout)
	j.Retry.InitialInterval = sinks.Duration(s.Retry.InitialInterval)
	j.Retry.MaxInterval = sinks.Duration(s.Retry.MaxInterval)
	j.Retry.Multiplier = s.Retry.Multiplier
	j.Retry.RandomizationFactor = s.Retry.RandomizationFactor
	j.Retry.MaxAttempts = s.Retry.MaxAttempts
	j.Retry.MaxElapsedTime = sinks.Duration(s.Retry.MaxElapsedTime)
	j.Breaker.Disabled = s.Breaker.Disabled
	j.Breaker.WarnAfter = s.Breaker.WarnAfter
	j.Breaker.OpenAfter = s.Breaker.OpenAfter
	j.Breaker.CoolDown = sinks.Duration(s.Breaker.CoolDown)
	j.Breaker.MaxCoolDown = sinks.Duration(s.Breaker.MaxCoolDown)
	j.Breaker.SkipWhileOpen = s.Breaker.SkipWhileOpen
	return j
}

func (j settingsJSON) settings() Settings {
	return Settings{
		Timeout: j.Timeout.D(),
		Retry: RetryPolicy{
			InitialInterval:     j.Retry.InitialInterval.D(),
			MaxInterval:         j.Retry.MaxInterval.D(),
			Multiplier:          j.Retry.Multiplier,
			RandomizationFactor: j.Retry.RandomizationFactor,
			MaxAttempts:         j.Retry.MaxAttempts,
			MaxElapsedTime:      j.Retry.MaxElapsedTime.D(),
		},
		Breaker: BreakerPolicy{
			Disabled:      j.Breaker.Disabled,
			WarnAfter:     j.Breaker.WarnAfter,
			OpenAfter:     j.Breaker.OpenAfter,
			CoolDown:      j.Breaker.CoolDown.D(),
			MaxCoolDown:   j.Breaker.MaxCoolDown.D(),
			SkipWhileOpen: j.Breaker.SkipWhileOpen,
		},
	}
}

// MarshalJSON writes the settings with snake_case names and durations as
// "30s"; zero fields are left out.
func (s Settings) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.toJSON())
}

// UnmarshalJSON reads the JSON form strictly: unknown fields and wrong types
// are *field.Error values naming the field. Fields absent from data keep
// their current value. It does not validate.
func (s *Settings) UnmarshalJSON(data []byte) error {
	j := s.toJSON()
	if err := field.DecodeStrict(data, &j); err != nil {
		if fe := nestedProblem(data); fe != nil {
			return fe
		}
		return err
	}
	*s = j.settings()
	return nil
}

// nestedProblem names the field of data that field.DecodeStrict refused when its
// error cannot: encoding/json drops the path from an Unmarshaler's errors
// (the durations) and from unknown fields of nested objects. Nil when it
// finds nothing more precise.
func nestedProblem(data []byte) error {
	var raw struct {
		Timeout json.RawMessage            `json:"timeout"`
		Retry   map[string]json.RawMessage `json:"retry"`
		Breaker map[string]json.RawMessage `json:"breaker"`
	}
	if json.Unmarshal(data, &raw) != nil {
		return nil
	}
	var d sinks.Duration
	if raw.Timeout != nil {
		if err := d.UnmarshalJSON(raw.Timeout); err != nil {
			return field.New("timeout", "%s", err.Error())
		}
	}
	objects := []struct {
		name   string
		fields map[string]json.RawMessage
		known  map[string]bool // name -> is a duration
	}{
		{"retry", raw.Retry, map[string]bool{"initial_interval": true, "max_interval": true,
			"multiplier": false, "randomization_factor": false, "max_attempts": false, "max_elapsed_time": true}},
		{"breaker", raw.Breaker, map[string]bool{"disabled": false, "warn_after": false, "open_after": false,
			"cool_down": true, "max_cool_down": true, "skip_while_open": false}},
	}
	for _, o := range objects {
		for _, k := range slices.Sorted(maps.Keys(o.fields)) {
			v := o.fields[k]
			isDuration, ok := o.known[k]
			if !ok {
				return field.New(o.name+"."+k, "unknown field")
			}
			if isDuration {
				if err := d.UnmarshalJSON(v); err != nil {
					return field.New(o.name+"."+k, "%s", err.Error())
				}
			}
		}
	}
	return nil
}
