package compose_test

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildScript builds every Go service with deploy/build.sh, exactly as
// deploy/Dockerfile does, and checks what the image would get: a static
// service binary, a static /healthcheck and, for the scorer, the demo GeoIP
// databases. Builds are CPU-heavy, so the services build one after another
// (go build is parallel inside), and -short skips them.
func TestBuildScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every service; skipped with -short")
	}
	root := repoRoot(t)
	for _, name := range goServiceNames() {
		t.Run(name, func(t *testing.T) {
			out := t.TempDir()
			cmd := exec.CommandContext(t.Context(), "bash", "deploy/build.sh", name, out)
			cmd.Dir = root
			output, err := cmd.CombinedOutput()
			require.NoError(t, err, "bash deploy/build.sh %s %s:\n%s", name, out, output)

			assertStatic(t, filepath.Join(out, name))
			assertStatic(t, filepath.Join(out, "healthcheck"))

			dbs := map[string]string{"demo-city.mmdb": "GeoLite2-City", "demo-asn.mmdb": "GeoLite2-ASN"}
			for file, dbType := range dbs {
				path := filepath.Join(out, file)
				if name != "scorer" {
					assert.NoFileExists(t, path, "only the scorer image carries GeoIP databases")
					continue
				}
				data, err := os.ReadFile(path)
				require.NoError(t, err, "the scorer build must generate %s", file)
				// Every MaxMind DB ends with a metadata section that starts
				// with this marker and holds the database type the scorer's
				// reader checks.
				_, meta, ok := bytes.Cut(data, []byte("\xab\xcd\xefMaxMind.com"))
				if assert.True(t, ok, "%s is not a MaxMind DB", file) {
					assert.Contains(t, string(meta), dbType, "%s: database type", file)
				}
			}
		})
	}
}

func TestBuildScriptRejectsUnknownService(t *testing.T) {
	root := repoRoot(t)
	for _, args := range [][]string{{"nosuch", t.TempDir()}, {"gateway"}, {}} {
		cmd := exec.CommandContext(t.Context(), "bash", append([]string{"deploy/build.sh"}, args...)...)
		cmd.Dir = root
		output, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "build.sh %v must fail", args)
		assert.Equal(t, 2, exit.ExitCode(), "build.sh %v: exit code", args)
		assert.Contains(t, string(output), "usage:", "build.sh %v must say how to use it", args)
	}
}

// assertStatic checks that path is an executable ELF file with no program
// interpreter and no shared libraries, so it runs on distroless/static.
func assertStatic(t *testing.T, path string) {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.NotZero(t, info.Mode().Perm()&0o111, "%s is not executable", path)

	f, err := elf.Open(path)
	require.NoError(t, err, "%s is not an ELF file", path)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "%s has a program interpreter: not statically linked", path)
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs, "%s needs shared libraries", path)
}
