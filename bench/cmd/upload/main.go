// Command upload is the upload floor of the benchmark: it uploads -bytes of
// generated data (a non-seekable stream, like a download) to an S3 endpoint
// with transfermanager's defaults, and prints the byte count as JSON.
// Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func main() {
	endpoint := flag.String("endpoint", "", "path-style S3 endpoint `URL`")
	bucket := flag.String("bucket", "", "bucket")
	key := flag.String("key", "", "object key")
	size := flag.Int64("bytes", 0, "bytes to upload")
	flag.Parse()
	if err := run(*endpoint, *bucket, *key, *size); err != nil {
		fmt.Fprintln(os.Stderr, "upload:", err)
		os.Exit(1)
	}
}

func run(endpoint, bucket, key string, size int64) error {
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
	})
	body := &pattern{left: size}
	_, err := transfermanager.New(client).UploadObject(context.Background(), &transfermanager.UploadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: body,
	})
	if err != nil {
		return fmt.Errorf("upload %d bytes: %w", size, err)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]int64{"bytes": size - body.left, "peakRSS": peakRSS()})
}

// pattern yields left bytes of CSV-like text from memory. It is only an
// io.Reader, so the upload cannot seek or learn the size in advance.
type pattern struct{ left int64 }

var block = bytes.Repeat([]byte("2024-06-01,2024-06-01,Atlas M30 Cluster,,Example Org,5f1a2b3c4d5e6f7a8b9c0d1e,prod,ATLAS_AWS_INSTANCE_M30,US_EAST_1,Cluster0,hours,0.54,24,0,12.96\n"), 512)

func (p *pattern) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	for i := 0; i < len(b); {
		i += copy(b[i:], block)
	}
	p.left -= int64(len(b))
	return len(b), nil
}

// peakRSS is this process's peak resident set in bytes (VmHWM), reported
// by the program itself: after it exits, getrusage would also count the
// parent's memory shared at fork.
func peakRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}
