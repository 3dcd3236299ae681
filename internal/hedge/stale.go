package hedge

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// StaleConn reports whether err is that of a connection the other end has
// closed: the node restarted (or dropped the connection) since the client
// last used it. franz-go opens a new connection for the next request, so
// one more try will likely be answered. A refused connection (the node is
// down) is not stale: trying again at once would only fail again.
func StaleConn(err error) bool {
	return err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
}
