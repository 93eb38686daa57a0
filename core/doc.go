// Package core holds the semantics of writing files to S3, free of FUSE:
// which descriptor's close completes an upload, what a write after a
// completed upload does, what rename and unlink do to a file being written,
// and which errno each outcome gets. The FUSE layer (package fs) translates
// kernel requests into calls on File and Handle with a process id and
// nothing else, so every rule here is tested by plain calls against an
// in-memory S3 (s3client/s3fake), thousands of interleavings a second.
//
// # The commit rule
//
// The kernel sends FLUSH on every close of every descriptor of an open file
// (dup'd and inherited copies included) and RELEASE, without a way to
// report an error, when the last one is gone. A Handle is one open file
// description; it holds the write session of its File, which several
// Handles share when the file is staged (stage.go: edits in place, a
// second writer), ending at the last one's RELEASE.
//
//   - The opener's close commits. A FLUSH from the process that opened the
//     handle completes the upload when bytes were written since the last
//     commit: the close returns once the object is complete, or EIO. This
//     covers cp, dd, tar, rsync, `cmd > file` and shell loops, whose forked
//     children's closes come from other processes.
//   - Other processes' closes never commit: a child exiting or a dup'd copy
//     closed by another process keeps the upload open.
//   - fsync on any descriptor commits what was written and reports.
//   - RELEASE commits whatever is still uncommitted; a failure there can only
//     be logged (SEMANTICS.md says which closes wait).
//   - A write after a commit reopens the object: a new upload starts with
//     the committed bytes (copied on the server, or read back when small)
//     and the next commit includes the new bytes. No byte is lost whichever
//     close committed, so a rule that guesses wrong (pid 0 from callers the
//     daemon cannot see, a builtin's dup-restore) costs requests, never data.
//   - A flush never publishes an empty file: the shell's redirection and dd
//     close a descriptor before they write. So an existing object is
//     replaced only by a complete new upload, `cmd > newfile` is one
//     PutObject, and an empty file (touch, `: > file`) is published by fsync
//     or at RELEASE.
//   - A failure in any step fails the session: every later write, flush and
//     fsync answers EIO until RELEASE, and the old object stays untouched.
//   - A copy (CopyFrom, cp's copy_file_range) into a file just opened stages
//     it on the source object as its base, nothing read: its commit, by the
//     same rule, composes the object on the server, conditioned on the
//     source's version, with the metadata the file has by then.
//
// # Ownership and locks
//
// A File is owned by the node of the filesystem layer that created it; its
// session (the state machine in file.go) is owned by the File and changed
// only with File.mu held. The uploader.Upload of a session is driven only
// by the goroutine holding File.mu; its part uploads run on the uploader's
// goroutines. A staged session's stage.File is driven likewise, except
// that a commit's parts read it concurrently (uploader.Compose) while the
// committing goroutine holds File.mu, so no write can come between. Lock order, outermost first:
//
//  1. File.mu (held across the S3 calls of one file's commit, rename or
//     unlink: they serialise per file; Stat never takes it),
//  2. the filesystem layer's node lock (taken by the Hooks, which run with
//     File.mu held; the filesystem layer never calls into a File while
//     holding its node lock),
//  3. the stage file's lock (stage.File.mu, never held across an S3
//     request), then the stage directory's (stage.Dir.mu, a leaf);
//     the uploader's own locks (never held with the stage's).
//
// What Stat needs (size, mtime, whether a session is open) is in atomics, so
// ls and stat never wait for S3, however slow a close is.
package core
