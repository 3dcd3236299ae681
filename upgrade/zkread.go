package upgrade

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// A tiny ZooKeeper client: enough of ZooKeeper's wire protocol (jute) to
// open a session, read and write a few znodes, so that a migration's progress
// can be read from the ZooKeeper the brokers use, without a dependency.

// errNoNode reports a znode that does not exist.
var errNoNode = errors.New("no such znode")

// errBadVersion reports a conditional write that lost to another writer.
var errBadVersion = errors.New("the znode changed since it was read")

// zkGetData reads the data of znode path (absolute, chroot included) from
// the ZooKeeper server at addr within timeout.
func zkGetData(ctx context.Context, addr, path string, timeout time.Duration) ([]byte, error) {
	var data []byte
	err := zkSession(ctx, addr, timeout, func(z *zkConn) error {
		var err error
		data, err = z.get(path)
		return err
	})
	return data, err
}

// zkGetMany reads the data of the znodes paths in one session; a znode that
// does not exist is absent from the map.
func zkGetMany(ctx context.Context, addr string, timeout time.Duration, paths []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(paths))
	err := zkSession(ctx, addr, timeout, func(z *zkConn) error {
		for _, p := range paths {
			data, err := z.get(p)
			if errors.Is(err, errNoNode) {
				continue
			}
			if err != nil {
				return err
			}
			out[p] = data
		}
		return nil
	})
	return out, err
}

// zkConn is an open ZooKeeper session.
type zkConn struct {
	conn net.Conn
	xid  int32
}

// zkSession opens a session on addr, runs fn and closes the session.
func zkSession(ctx context.Context, addr string, timeout time.Duration, fn func(*zkConn) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	// ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId,
	// passwd (16 zero bytes), readOnly.
	var req bytes.Buffer
	binary.Write(&req, binary.BigEndian, int32(0))
	binary.Write(&req, binary.BigEndian, int64(0))
	binary.Write(&req, binary.BigEndian, int32(max(timeout, 4*time.Second)/time.Millisecond))
	binary.Write(&req, binary.BigEndian, int64(0))
	binary.Write(&req, binary.BigEndian, int32(16))
	req.Write(make([]byte, 16))
	req.WriteByte(0)
	if err := zkSend(conn, req.Bytes()); err != nil {
		return err
	}
	resp, err := zkRecv(conn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if len(resp) < 16 {
		return fmt.Errorf("connect: short response (%d bytes)", len(resp))
	}
	if binary.BigEndian.Uint32(resp[4:8]) == 0 {
		return errors.New("connect: the server refused the session (timeout 0)")
	}
	z := &zkConn{conn: conn}
	err = fn(z)
	// CloseSession (type -11), so that the session ends now, not at its
	// timeout; its answer is not awaited.
	var cl bytes.Buffer
	binary.Write(&cl, binary.BigEndian, z.xid+1)
	binary.Write(&cl, binary.BigEndian, int32(-11))
	zkSend(conn, cl.Bytes())
	return err
}

// call sends a request of type op with body and returns the response body
// after its header.
func (z *zkConn) call(op int32, body []byte, what string) ([]byte, error) {
	z.xid++
	var req bytes.Buffer
	binary.Write(&req, binary.BigEndian, z.xid)
	binary.Write(&req, binary.BigEndian, op)
	req.Write(body)
	if err := zkSend(z.conn, req.Bytes()); err != nil {
		return nil, err
	}
	for {
		resp, err := zkRecv(z.conn)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if len(resp) < 16 {
			return nil, fmt.Errorf("%s: short response (%d bytes)", what, len(resp))
		}
		if int32(binary.BigEndian.Uint32(resp[0:4])) != z.xid {
			continue // a ping or notification: not ours
		}
		switch code := int32(binary.BigEndian.Uint32(resp[12:16])); code {
		case 0:
			return resp[16:], nil
		case -101:
			return nil, fmt.Errorf("%s: %w", what, errNoNode)
		case -103:
			return nil, fmt.Errorf("%s: %w", what, errBadVersion)
		default:
			return nil, fmt.Errorf("%s: ZooKeeper error %d", what, code)
		}
	}
}

func zkPath(path string) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, int32(len(path)))
	b.WriteString(path)
	return b.Bytes()
}

// get reads a znode's data (GetData, type 4, no watch).
func (z *zkConn) get(path string) ([]byte, error) {
	data, _, err := z.getVersioned(path)
	return data, err
}

// getVersioned reads a znode's data and the version of that data (the
// version field of the Stat that follows the data).
func (z *zkConn) getVersioned(path string) ([]byte, int32, error) {
	body, err := z.call(4, append(zkPath(path), 0), "get "+path)
	if err != nil {
		return nil, 0, err
	}
	if len(body) < 4 {
		return nil, 0, fmt.Errorf("get %s: short data", path)
	}
	var data []byte // nil for a znode without data (length -1)
	off := 4
	if n := int(int32(binary.BigEndian.Uint32(body[:4]))); n > 0 {
		if n > len(body)-4 {
			return nil, 0, fmt.Errorf("get %s: data of %d bytes in a response of %d", path, n, len(body))
		}
		data, off = body[4:4+n], 4+n
	}
	// The Stat: czxid, mzxid, ctime, mtime (8 bytes each), then version.
	stat := body[off:]
	if len(stat) < 36 {
		return nil, 0, fmt.Errorf("get %s: short stat (%d bytes)", path, len(stat))
	}
	return data, int32(binary.BigEndian.Uint32(stat[32:36])), nil
}

// set replaces a znode's data if its data version is still version
// (SetData, type 5): errBadVersion if another client changed it since.
func (z *zkConn) set(path string, data []byte, version int32) error {
	body := zkPath(path)
	body = binary.BigEndian.AppendUint32(body, uint32(len(data)))
	body = append(body, data...)
	body = binary.BigEndian.AppendUint32(body, uint32(version))
	_, err := z.call(5, body, "set "+path)
	return err
}

// delete deletes a znode at any version (Delete, type 2, version -1).
func (z *zkConn) delete(path string) error {
	_, err := z.call(2, binary.BigEndian.AppendUint32(zkPath(path), 0xffffffff), "delete "+path)
	return err
}

func zkSend(w io.Writer, b []byte) error {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(b)))
	_, err := w.Write(append(h[:], b...))
	return err
}

func zkRecv(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > 1<<20 {
		return nil, fmt.Errorf("response of %d bytes is too large", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

// zkChroot returns the chroot of a zookeeper.connect string ("" for none).
func zkChroot(connect string) string {
	if i := strings.IndexByte(connect, '/'); i >= 0 {
		return strings.TrimRight(connect[i:], "/")
	}
	return ""
}
