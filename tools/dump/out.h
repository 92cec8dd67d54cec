/*
 * The dump's emitter: one set of calls that renders either as indented text lines or as one
 * JSON document. A caller opens objects and arrays and writes fields into them; the emitter
 * keeps the nesting, the separators and the indentation.
 *
 * Text: an object's title starts a line; a FRAME_LINE object puts its fields after the title on
 * that line (`node 4096 level 0 ...`), a FRAME_BLOCK object puts one `key  value` per line
 * under it. JSON: objects, arrays and `"key": value`, whatever the frame kind.
 *
 * A value with a shape of its own (a key, a set of flags) is written between out_field_begin
 * and out_field_end, straight to o->f, in the form o->json says.
 */
#ifndef COWFS_TOOLS_DUMP_OUT_H
#define COWFS_TOOLS_DUMP_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Deeper than any nesting the dump writes; the depth is fixed by code, never by an image. */
#define OUT_MAX_DEPTH 16

/* How a text object is laid out: fields on its title's line, or one field per line. */
enum frame_kind { FRAME_LINE, FRAME_BLOCK, FRAME_ARRAY };

struct frame {
	enum frame_kind kind;
	bool comma;      /* JSON: a value was already written at this level */
	bool indented;   /* text: the frame had a title and indented its children */
};

struct out {
	FILE *f;
	bool json;
	bool mute;       /* discard everything (walks that only collect) */
	int depth;
	struct frame fr[OUT_MAX_DEPTH];
	int indent;      /* text: tabs before a new line */
	bool line_open;  /* text: a line was started and not ended */
};

void out_init(struct out *o, FILE *f, bool json);

/* Start an object: JSON `key: {`; text a line starting with `title` (none if NULL). */
void out_obj_begin(struct out *o, const char *key, const char *title, enum frame_kind kind);
void out_obj_end(struct out *o);
/* Start an array: JSON `key: [`; text a `title:` line (none if NULL). */
void out_arr_begin(struct out *o, const char *key, const char *title);
void out_arr_end(struct out *o);

void out_u64(struct out *o, const char *key, uint64_t v);
/* The same, without the name in text (the object's title says what it is). */
void out_anon_u64(struct out *o, const char *key, uint64_t v);
/* Text in hex; JSON an integer. */
void out_x64(struct out *o, const char *key, uint64_t v);
/* A token known to be printable (names, states): unquoted in text. */
void out_str(struct out *o, const char *key, const char *s);
/* A name: text `(s)` without the key, JSON "key": "s". */
void out_tag(struct out *o, const char *key, const char *s);
void out_bool(struct out *o, const char *key, bool v);
/* Bytes from the image or a message: quoted and escaped in both forms. */
void out_qstr(struct out *o, const char *key, const char *s, size_t n);
void out_hex(struct out *o, const char *key, const void *p, size_t n);

/*
 * A field whose value the caller writes itself. Text: on a LINE object ` key value` (just
 * ` value` when anon), on a BLOCK object one `key  value` line. Returns false when muted:
 * write nothing, and do not call out_field_end.
 */
bool out_field_begin(struct out *o, const char *key, bool anon);
void out_field_end(struct out *o);

#endif
