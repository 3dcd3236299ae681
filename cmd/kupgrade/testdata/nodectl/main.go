// Command nodectl is the helper kupgrade's end-to-end test renders into its
// config's command templates: it asks the test process, over HTTP on
// 127.0.0.1, to restart a node of the test's kafkatest cluster, whether one
// is alive, or which nodes there are, as ssh and systemctl would for a real
// cluster.
//
//	nodectl -url URL nodes
//	nodectl -url URL restart ID CHANGE_JSON
//	nodectl -url URL alive ID        (exit 0 alive, 1 not)
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func main() {
	base := flag.String("url", "", "the test's control endpoint")
	flag.Parse()
	args := flag.Args()
	if *base == "" || len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: nodectl -url URL nodes | restart ID CHANGE_JSON | alive ID")
		os.Exit(2)
	}
	client := &http.Client{Timeout: 10 * time.Minute}
	var (
		resp *http.Response
		err  error
	)
	switch {
	case args[0] == "nodes" && len(args) == 1:
		resp, err = client.Get(*base + "/nodes")
	case args[0] == "restart" && len(args) == 3:
		resp, err = client.Post(*base+"/restart?id="+url.QueryEscape(args[1]), "application/json", strings.NewReader(args[2]))
	case args[0] == "alive" && len(args) == 2:
		resp, err = client.Get(*base + "/alive?id=" + url.QueryEscape(args[1]))
	default:
		fmt.Fprintf(os.Stderr, "nodectl: bad arguments %q\n", args)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodectl:", err)
		os.Exit(4)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		os.Stdout.Write(body)
	case http.StatusGone: // alive: the process is not running
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "nodectl: %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
		os.Exit(5)
	}
}
