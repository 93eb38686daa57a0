package main

import (
	"net"
	"os"
)

// sdNotify sends state (READY=1, STOPPING=1) to systemd's notification
// socket when there is one: a unit of Type=notify running bucketfs -f is
// then active exactly when the mount is live. Without $NOTIFY_SOCKET it
// does nothing.
func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:] // an abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}
