package stomp

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
)

// stompLogger sends go-stomp's log lines to the bus's logger; go-stomp
// writes to stderr otherwise. go-stomp has no trace level and logs no
// frame contents, so no secret passes here.
type stompLogger struct{ l watermill.LoggerAdapter }

func (s stompLogger) Debugf(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...), nil) }
func (s stompLogger) Infof(format string, v ...any)  { s.l.Info(fmt.Sprintf(format, v...), nil) }
func (s stompLogger) Warningf(format string, v ...any) {
	s.l.Info(fmt.Sprintf(format, v...), watermill.LogFields{"stomp_level": "warning"})
}
func (s stompLogger) Errorf(format string, v ...any) { s.l.Error(fmt.Sprintf(format, v...), nil, nil) }
func (s stompLogger) Debug(msg string)               { s.l.Debug(msg, nil) }
func (s stompLogger) Info(msg string)                { s.l.Info(msg, nil) }
func (s stompLogger) Warning(msg string) {
	s.l.Info(msg, watermill.LogFields{"stomp_level": "warning"})
}
func (s stompLogger) Error(msg string) { s.l.Error(msg, nil, nil) }
