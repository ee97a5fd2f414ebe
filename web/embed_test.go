package web

import (
	"errors"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func TestFSHasIndex(t *testing.T) {
	b, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatalf("FS() has no index.html: %v", err)
	}
	if !strings.Contains(strings.ToLower(string(b)), "<html") {
		t.Errorf("index.html does not look like HTML:\n%s", b)
	}
	if err := fstest.TestFS(FS(), "index.html"); err != nil {
		t.Errorf("FS() is not a well-behaved fs.FS: %v", err)
	}
}

func TestBuiltMatchesDisk(t *testing.T) {
	_, err := os.Stat("dist/app/index.html")
	onDisk := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat dist/app/index.html: %v", err)
	}
	if Built() != onDisk {
		t.Errorf("Built() = %v, but dist/app/index.html on disk: %v", Built(), onDisk)
	}
}

func TestPlaceholderOrApp(t *testing.T) {
	b, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if !Built() {
		if !strings.Contains(page, "The Bulwark UI was not built") || !strings.Contains(page, "make web") {
			t.Errorf("placeholder page does not say how to build the UI:\n%s", page)
		}
		var files []string
		err := fs.WalkDir(FS(), ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 1 || files[0] != "index.html" {
			t.Errorf("placeholder FS holds %v, want only index.html", files)
		}
		return
	}
	// A built UI: every asset the page references is relative and embedded,
	// and nothing is loaded from another host.
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) == 0 {
		t.Fatalf("built index.html references no assets:\n%s", page)
	}
	for _, m := range refs {
		ref := m[1]
		if strings.Contains(ref, "//") {
			t.Errorf("index.html references %q from another host", ref)
			continue
		}
		if !strings.HasPrefix(ref, "./") {
			t.Errorf("index.html reference %q is not relative (vite base must be './')", ref)
			continue
		}
		if _, err := fs.Stat(FS(), strings.TrimPrefix(ref, "./")); err != nil {
			t.Errorf("index.html references %q, which is not embedded: %v", ref, err)
		}
	}
	if _, err := fs.Stat(FS(), "placeholder"); err == nil {
		t.Errorf("built FS should not expose the placeholder directory")
	}
}
