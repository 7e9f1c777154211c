// refponger: the reference a TypeScript ponger is measured against. Like the services this project
// replaces: net/http, GET /ping answers "pong", TLS with client-certificate verification, one log line
// per request on stdout.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	cert := flag.String("cert", "", "server certificate (PEM)")
	key := flag.String("key", "", "server private key (PEM)")
	clientCA := flag.String("client-ca", "", "CA bundle clients' certificates must chain to (PEM)")
	flag.Parse()

	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatalf("loading key pair: %v", err)
	}
	caPEM, err := os.ReadFile(*clientCA)
	if err != nil {
		log.Fatalf("reading client CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		log.Fatalf("%s holds no certificate", *clientCA)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("Received %s /ping from %s", r.Method, r.RemoteAddr)
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Ponger-Pod", "refponger")
		_, _ = w.Write([]byte("pong"))
	})

	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	server := &http.Server{
		Handler: mux,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{pair},
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		},
	}
	log.SetOutput(os.Stdout)
	log.Fatal(server.ServeTLS(listener, "", ""))
}
