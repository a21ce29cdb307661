// netcheck is the workload of the lab's worker scenario: a tiny HTTP server
// that says where it runs and, on request, reaches another address or
// resolves a name from inside its pod, so a test can check pod-to-pod
// routes, Services and cluster DNS through the API server's pod proxy.
//
//	GET /                 {"node": NODE_NAME, "podIP": POD_IP, "hostname": ...}
//	GET /healthz          ok
//	GET /fetch?url=URL    the body of GET URL (502 and the error if it fails)
//	GET /resolve?name=N   N's addresses, one per line (502 and the error if none)
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const timeout = 5 * time.Second

func main() {
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	client := &http.Client{Timeout: timeout}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		host, _ := os.Hostname()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"node":     os.Getenv("NODE_NAME"),
			"podIP":    os.Getenv("POD_IP"),
			"hostname": host,
		})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /fetch", func(w http.ResponseWriter, r *http.Request) {
		url := r.URL.Query().Get("url")
		if url == "" {
			http.Error(w, "missing ?url=", http.StatusBadRequest)
			return
		}
		resp, err := client.Get(url)
		if err != nil {
			http.Error(w, fmt.Sprintf("GET %s: %v", url, err), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			http.Error(w, fmt.Sprintf("GET %s: reading the body: %v", url, err), http.StatusBadGateway)
			return
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /resolve", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		if name == "" {
			http.Error(w, "missing ?name=", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, name)
		if err != nil {
			http.Error(w, fmt.Sprintf("resolve %s: %v", name, err), http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, strings.Join(addrs, "\n"))
	})
	log.Printf("netcheck listening on %s (node %q, pod IP %q)", addr, os.Getenv("NODE_NAME"), os.Getenv("POD_IP"))
	server := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: timeout}
	log.Fatal(server.ListenAndServe())
}
