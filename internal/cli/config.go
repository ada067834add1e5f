package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
)

// settings are the flags run and invoke lay over the functions' variables
// (internal/config): a flag given stands for its variable, so both front
// ends read one configuration by one set of rules.
type settings struct {
	fs     *flag.FlagSet
	out    string
	region string
}

// variables names the variables each setting flag stands for.
var variables = map[string][]string{
	"org":         {config.EnvOrgIDs},
	"base-url":    {config.EnvAtlasBaseURL, config.EnvBaseURL},
	"secret-arn":  {config.EnvSecretARN},
	"s3-endpoint": {config.EnvS3Endpoint},
	"kms-key-id":  {config.EnvKMSKeyID},
	"max-polls":   {config.EnvMaxPolls},
	"focus":       {config.EnvFocus},
	"strict":      {config.EnvStrict},
}

func (s *settings) define(fs *flag.FlagSet) {
	s.fs = fs
	fs.Var(new(listFlag), "org", "Atlas organization `ID` (24 hex); repeat or give a comma list (env "+config.EnvOrgIDs+"; else the secret's orgIds)")
	fs.StringVar(&s.out, "out", "", "local `FOLDER` or s3://bucket/prefix to write to (default "+config.DefaultOutputDir+", or s3://$"+config.EnvBucket+"/$"+config.EnvPrefix+" when "+config.EnvBucket+" is set)")
	fs.String("base-url", "", "Atlas Admin API `URL`; http only for a loopback host (env "+config.EnvAtlasBaseURL+", then "+config.EnvBaseURL+"; default https://cloud.mongodb.com)")
	fs.String("secret-arn", "", "read the Atlas credentials from this Secrets Manager secret `ARN` instead of the MONGODB_ATLAS_* variables (env "+config.EnvSecretARN+")")
	fs.String("s3-endpoint", "", "custom S3 endpoint `URL`, path-style, e.g. versitygw or MinIO (env "+config.EnvS3Endpoint+")")
	fs.String("kms-key-id", "", "KMS `KEY` id or ARN for SSE-KMS on S3 output; unset: SSE-S3 (env "+config.EnvKMSKeyID+")")
	fs.StringVar(&s.region, "region", "", "AWS `REGION` for S3 and Secrets Manager (default: AWS_REGION or the AWS profile)")
	fs.Int("max-polls", config.DefaultMaxPollAttempts, fmt.Sprintf("give up after `N` usage polls per org and month, 1 to %d (env %s)", config.MaxPollAttempts, config.EnvMaxPolls))
	fs.Bool("focus", true, "also fetch Atlas's FOCUS report of each closed invoice; --focus=false to skip (env "+config.EnvFocus+")")
	fs.Bool("strict", false, "fail (exit 1, error Export.Warnings) when the export gave warnings, once everything is stored (env "+config.EnvStrict+")")
}

// config reads the configuration as the functions do (config.Local), with
// the flags given laid over the environment. A bad setting is a
// Config.Invalid that names the flag the value came from.
func (s *settings) config(getenv func(string) string) (config.Config, error) {
	over := map[string]string{}
	rename := []string{}
	s.fs.Visit(func(f *flag.Flag) {
		for _, v := range variables[f.Name] {
			over[v] = f.Value.String()
			rename = append(rename, v, "--"+f.Name)
		}
	})
	cfg, err := config.Local(func(k string) string {
		if v, ok := over[k]; ok {
			return v
		}
		return getenv(k)
	}, s.out)
	var e *export.Error
	if errors.As(err, &e) {
		e.Msg = strings.NewReplacer(rename...).Replace(e.Msg)
	}
	return cfg, err
}

// exporter builds the export of cfg as the functions do (function.Build),
// checking first what would otherwise fail only after Atlas had been asked:
// the credentials (when needed), the output folder, and for S3 or a secret
// the AWS region and credentials. Those problems are a Config.Invalid.
func (s *settings) exporter(ctx context.Context, cfg config.Config, needCreds bool, getenv func(string) string) (*export.Exporter, error) {
	if needCreds && cfg.SecretARN == "" && cfg.Credentials.Kind() == "" {
		return nil, configInvalid("no Atlas credentials: set %s and %s (service account) or %s and %s (API key), or pass --secret-arn",
			secret.EnvClientID, secret.EnvClientSecret, secret.EnvPublicKey, secret.EnvPrivateKey)
	}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o777); err != nil {
			return nil, configInvalid("--out %.64q: %v", cfg.Dir, errors.Unwrap(err))
		}
	}
	var awsCfg aws.Config
	if cfg.Bucket != "" || cfg.SecretARN != "" {
		var err error
		if awsCfg, err = loadAWS(ctx, s.region); err != nil {
			return nil, err
		}
	}
	return function.Build(cfg, awsCfg, getenv, "cli", nil, normalize.Parquet{})
}

// loadAWS reads the AWS configuration (region, credentials) from the SDK's
// usual chain, and checks that it has both.
func loadAWS(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, configInvalid("the AWS configuration: %v", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, configInvalid("no AWS region: pass --region or set AWS_REGION")
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return aws.Config{}, configInvalid("no AWS credentials: %v", err)
	}
	return cfg, nil
}

func configInvalid(format string, args ...any) error {
	return &export.Error{Name: export.ConfigInvalid, Msg: fmt.Sprintf(format, args...)}
}
