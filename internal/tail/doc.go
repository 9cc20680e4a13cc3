// Package tail follows a log file as it is written, the way kube-apiserver
// writes its audit log (--audit-log-path): it hands on complete lines only,
// survives rotation by rename (a new file appears at the path; the rest of
// the old one is read first) and by copy-truncate (the file shrinks, or its
// first bytes change), and resumes from a stored Position after a restart,
// finding the old file by its device and inode when it was rotated away
// meanwhile.
//
// The follower polls: it reads while there is data and, at the end of the
// file, checks the path every Options.Poll. Polling is portable and costs
// one stat (and a read of the file's first bytes) per interval when idle.
//
// Lines written by a copy-truncate rotation between the copy and the
// truncation are lost to every reader; that is a property of copytruncate,
// not of this package.
package tail
