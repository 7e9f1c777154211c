// loadgen: a neutral load generator for the ponger benchmark. Opens -connections keep-alive mutual-TLS
// connections to -url, keeps one GET in flight on each for -duration after -warmup, checks every
// answer is 200 "pong", and prints one JSON line: requests, errors, seconds, requestsPerSecond.
// It speaks HTTP/1.1 on the TLS connections itself (no client connection pool), so that it costs as
// little CPU per request as possible and the server, not the client, sets the pace.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	neturl "net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "", "https://host:port/ping")
	ca := flag.String("ca", "", "CA bundle to trust for the server (PEM)")
	cert := flag.String("cert", "", "client certificate (PEM)")
	key := flag.String("key", "", "client private key (PEM)")
	connections := flag.Int("connections", 32, "keep-alive connections, one request in flight on each")
	warmup := flag.Duration("warmup", 2*time.Second, "load before counting starts")
	duration := flag.Duration("duration", 8*time.Second, "counted load")
	flag.Parse()

	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatalf("loading client key pair: %v", err)
	}
	caPEM, err := os.ReadFile(*ca)
	if err != nil {
		log.Fatalf("reading CA: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		log.Fatalf("%s holds no certificate", *ca)
	}
	target, err := neturl.Parse(*url)
	if err != nil || target.Scheme != "https" {
		log.Fatalf("-url must be an https:// URL, got %q", *url)
	}
	tlsConfig := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, ServerName: target.Hostname()}

	address := target.Host
	request := []byte("GET " + target.RequestURI() + " HTTP/1.1\r\nHost: " + target.Host + "\r\n\r\n")

	var counting atomic.Bool
	var requests, errors atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < *connections; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn *tls.Conn
			var reader *bufio.Reader
			for {
				select {
				case <-stop:
					if conn != nil {
						conn.Close()
					}
					return
				default:
				}
				if conn == nil {
					c, err := tls.Dial("tcp", address, tlsConfig)
					if err != nil {
						if counting.Load() {
							errors.Add(1)
						}
						time.Sleep(10 * time.Millisecond)
						continue
					}
					conn, reader = c, bufio.NewReader(c)
				}
				ok, keep := roundTrip(conn, reader, request)
				if counting.Load() {
					if ok {
						requests.Add(1)
					} else {
						errors.Add(1)
					}
				}
				if !keep {
					conn.Close()
					conn = nil
				}
			}
		}()
	}
	time.Sleep(*warmup)
	counting.Store(true)
	started := time.Now()
	time.Sleep(*duration)
	counting.Store(false)
	seconds := time.Since(started).Seconds()
	close(stop)
	wg.Wait()
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
		"requests":          requests.Load(),
		"errors":            errors.Load(),
		"seconds":           seconds,
		"requestsPerSecond": float64(requests.Load()) / seconds,
	})
}

// roundTrip writes one request on a kept-alive connection and reads its answer: whether it was 200
// "pong", and whether the connection can carry the next request.
func roundTrip(conn *tls.Conn, reader *bufio.Reader, request []byte) (ok bool, keep bool) {
	if _, err := conn.Write(request); err != nil {
		return false, false
	}
	response, err := http.ReadResponse(reader, nil)
	if err != nil {
		return false, false
	}
	body, err := io.ReadAll(response.Body)
	response.Body.Close()
	if err != nil {
		return false, false
	}
	return response.StatusCode == http.StatusOK && string(body) == "pong", !response.Close
}
