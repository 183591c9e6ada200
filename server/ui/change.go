package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/attachd/attachd/server/store"
)

// confirm asks before a delete or a move: a page with the form that does it.
func (h *Handler) confirm(w http.ResponseWriter, r *http.Request, s *session, action string) {
	if !s.user.Write {
		h.fail(w, r, s, http.StatusForbidden, "read-only: your login cannot delete or move messages")
		return
	}
	key, rel, err := target(r, s)
	if err != nil {
		h.failErr(w, r, s, err)
		return
	}
	if _, err := h.st.Stat(r.Context(), key); err != nil {
		h.failErr(w, r, s, err)
		return
	}
	path := store.UnescapeKey(rel)
	h.render(w, r, s, http.StatusOK, "confirm", map[string]any{"Action": action, "P": rel, "Path": path,
		"Back": Prefix + "play?" + url.Values{"p": {rel}}.Encode()})
}

// change checks a delete's or a move's form, then makes the change through
// the store, so that hooks, quotas and the backend see it as any other.
func (h *Handler) change(w http.ResponseWriter, r *http.Request, s *session, do func(context.Context, *session, string, url.Values) (string, error)) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, s, http.StatusBadRequest, "malformed form")
		return
	}
	if !h.checkCSRF(s, r.PostForm.Get("csrf")) {
		h.fail(w, r, s, http.StatusForbidden, "the form's token is missing or stale: reload the page and try again")
		return
	}
	if !s.user.Write {
		h.fail(w, r, s, http.StatusForbidden, "read-only: your login cannot delete or move messages")
		return
	}
	key, _, err := target(r, s)
	if err != nil {
		h.failErr(w, r, s, err)
		return
	}
	done, err := do(r.Context(), s, key, r.PostForm)
	if err != nil {
		h.failErr(w, r, s, err)
		return
	}
	h.log.Info("ui: "+done, "user", s.name, "key", key)
	http.Redirect(w, r, Prefix+"?done="+done, http.StatusSeeOther)
}

// errLocked is a change refused for a WebDAV lock held on the message.
var errLocked = errors.New("the message is locked by a WebDAV client")

func (h *Handler) unlocked(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		locks, err := h.st.Locks(ctx, k, false)
		if err != nil {
			return err
		}
		if len(locks) > 0 {
			return fmt.Errorf("%w: %s", errLocked, store.UnescapeKey(k))
		}
	}
	return nil
}

func (h *Handler) delete(ctx context.Context, s *session, key string, _ url.Values) (string, error) {
	if err := h.unlocked(ctx, key); err != nil {
		return "", err
	}
	return "deleted", h.st.Delete(ctx, key)
}

// move renames the message to the form's "to", a path below the user's
// root; an existing object there is not replaced.
func (h *Handler) move(ctx context.Context, s *session, key string, form url.Values) (string, error) {
	to, err := store.CanonicalPath(form.Get("to"))
	if err != nil {
		return "", err
	}
	if to == "" {
		return "", fmt.Errorf("%w: to: name where the message goes", store.ErrInvalidKey)
	}
	dst := s.user.Key(to)
	if dst == key {
		return "", fmt.Errorf("%w: to: the message is already there", store.ErrInvalidKey)
	}
	if err := h.unlocked(ctx, key, dst); err != nil {
		return "", err
	}
	if err := h.mkdirs(ctx, s, dst); err != nil {
		return "", err
	}
	return "moved", h.st.Move(ctx, key, dst, false)
}

// mkdirs makes the folders above key that are missing, below the user's
// root: a move may name a new folder, as Kazoo's stores do.
func (h *Handler) mkdirs(ctx context.Context, s *session, key string) error {
	parents := store.Parents(key)
	for i := len(parents) - 1; i >= 0; i-- {
		p := parents[i]
		if _, inside := s.user.Inside(p); !inside {
			continue
		}
		if _, err := h.st.StatDir(ctx, p); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := h.st.Mkdir(ctx, p); err != nil && !errors.Is(err, store.ErrExists) {
			return err
		}
	}
	return nil
}
