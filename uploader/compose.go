package uploader

import (
	"io"
)

// Range is the byte range [Off, End) of an object.
type Range struct{ Off, End int64 }

// Layout describes an object to compose.
type Layout struct {
	Size int64       // the new object's size
	Data io.ReaderAt // reads any range of the new object (the stage fetches what it lacks; it may be slow)
	Base Base        // an existing object (Key, ETag, Size) the new one shares bytes with; zero: none
	Same []Range     // ascending, disjoint ranges where the new object equals Base at the same offsets (within Base.Size and Size)
}
