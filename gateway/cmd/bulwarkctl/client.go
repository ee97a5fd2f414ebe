package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// client calls the admin API and prints what it answers.
type client struct {
	base            *url.URL
	token           string
	user, password  string
	hc              *http.Client
	json            bool // print the server's JSON as is
	stdout          io.Writer
	haveCredentials bool
}

// apiError is a response with status 400 or more.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.msg, e.status) }

// usageError is a command line that cannot be run.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

const maxResponse = 32 << 20

// do sends one request and returns the response body of a 2xx answer.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body any) ([]byte, error) {
	u := c.base.JoinPath(path) // path is already escaped: see seg
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.user != "" || c.password != "":
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err // a *url.Error: method, URL (password redacted) and cause
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", method, u.Redacted(), err)
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		if resp.StatusCode == http.StatusUnauthorized && !c.haveCredentials {
			msg += "; set BULWARK_ADMIN_TOKEN (or --token, or --user and --password)"
		}
		return nil, &apiError{status: resp.StatusCode, msg: msg}
	}
	return b, nil
}

// call sends a request and prints the answer: the raw JSON with --json,
// else what human makes of it.
func (c *client) call(ctx context.Context, method, path string, query url.Values, body any, human func([]byte) error) error {
	b, err := c.do(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	if c.json {
		b = bytes.TrimRight(b, "\n")
		_, err := fmt.Fprintf(c.stdout, "%s\n", b)
		return err
	}
	return human(b)
}

// into decodes a response body for human output.
func into[T any](b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("unexpected response: %w", err)
	}
	return v, nil
}
