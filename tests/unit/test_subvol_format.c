/*
 * The subvolume commands' formatter and helpers (tools/subvol/format.c, path.c, errors.c), held
 * against the exact text they must print: list lines, show's fields, space's figures as text
 * and as JSON (sizes in bytes, null for what is not known), uuids, flags with the deletion's
 * progress, the top level's and a deleted subvolume's path; DIR/NAME split as the ioctls on a
 * directory need it; ids on the command line; the messages that say what to do.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/support/fixture.h"
#include "tools/subvol/parts.h"

/* What a formatter wrote, as one string the caller frees. */
struct capture {
	char *buf;
	size_t len;
	FILE *f;
};

static void capture_begin(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	ck_assert_ptr_nonnull(c->f);
}

static char *capture_end(struct capture *c)
{
	ck_assert_int_eq(fclose(c->f), 0);
	return c->buf;
}

#define ck_assert_output(c, want)                                      \
	do {                                                           \
		char *got_ = capture_end(c);                           \
		ck_assert_str_eq(got_, want);                          \
		free(got_);                                            \
	} while (0)

/* A snapshot 257 of 256, read-only, made at 2026-12-02 17:43:56 UTC. */
static struct cowfs_ioc_subvol_info snapshot_info(void)
{
	struct cowfs_ioc_subvol_info i;

	memset(&i, 0, sizeof(i));
	i.id = 257;
	i.parent = 5;
	i.dir = 258;
	i.source = 256;
	i.generation = 12;
	i.ctransid = 9;
	i.otime_sec = 1796233436;
	i.otime_nsec = 5;
	i.flags = COWFS_SUBVOL_RDONLY;
	for (int b = 0; b < 16; b++) {
		i.uuid[b] = (uint8_t)b;
		i.source_uuid[b] = (uint8_t)(0xf0 + b);
	}
	strcpy(i.name, "snap");
	strcpy(i.path, "snaps/snap");
	return i;
}

static const struct cowfs_ioc_subvol_space snapshot_space = {
	.exclusive = 1064960, .exclusive_data = 1048576, .exclusive_meta = 16384,
	.referenced = 3145728,
};

static void utc(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
}

START_TEST(uuids)
{
	uint8_t zero[16] = { 0 }, u[16];
	char buf[SV_UUID_STR];

	for (int b = 0; b < 16; b++)
		u[b] = (uint8_t)(b * 17);
	ck_assert_str_eq(sv_uuid_format(zero, buf), "-");
	ck_assert_str_eq(sv_uuid_format(u, buf), "00112233-4455-6677-8899-aabbccddeeff");
}
END_TEST

START_TEST(flags_and_paths)
{
	struct cowfs_ioc_subvol_info i;
	char buf[SV_FLAGS_STR];

	memset(&i, 0, sizeof(i));
	i.id = 5;
	ck_assert_str_eq(sv_flags_format(&i, buf), "-");
	ck_assert_str_eq(sv_path_shown(&i), "<top level>");
	i.flags = COWFS_SUBVOL_DEFAULT;
	ck_assert_str_eq(sv_flags_format(&i, buf), "default");
	i.flags = COWFS_SUBVOL_RDONLY | COWFS_SUBVOL_DEFAULT;
	ck_assert_str_eq(sv_flags_format(&i, buf), "ro, default");
	i.id = 300;
	strcpy(i.path, "a/b");
	ck_assert_str_eq(sv_path_shown(&i), "a/b");
	/* Deleting: the progress floored to a whole percent, never past 100. */
	i.flags = COWFS_SUBVOL_DELETING;
	i.path[0] = '\0';
	i.drop_permille = 429;
	ck_assert_str_eq(sv_flags_format(&i, buf), "deleting, 42% done");
	ck_assert_str_eq(sv_path_shown(&i), "<deleted>");
	i.drop_permille = 1000;
	ck_assert_str_eq(sv_flags_format(&i, buf), "deleting, 100% done");
	i.drop_permille = 70000;
	i.flags |= COWFS_SUBVOL_RDONLY;
	ck_assert_str_eq(sv_flags_format(&i, buf), "ro, deleting, 100% done");
}
END_TEST

START_TEST(list_lines)
{
	struct cowfs_ioc_subvol_info i = snapshot_info(), top;
	struct capture c;

	memset(&top, 0, sizeof(top));
	top.id = 5;
	top.generation = 14;
	top.flags = COWFS_SUBVOL_DEFAULT;
	capture_begin(&c);
	sv_list_header(c.f);
	sv_list_line(c.f, &top, NULL, false);
	sv_list_line(c.f, &i, &snapshot_space, false);
	sv_list_line(c.f, &i, &snapshot_space, true);
	ck_assert_output(&c,
		"ID       Parent   Gen        Flags                 Exclusive  Path\n"
		"5        0        14         default                       -  <top level>\n"
		"257      5        12         ro                      1.02MiB  snaps/snap\n"
		"257      5        12         ro                      1064960  snaps/snap\n");
}
END_TEST

START_TEST(subvol_json)
{
	struct cowfs_ioc_subvol_info i = snapshot_info();
	struct capture c;
	struct out o;

	capture_begin(&c);
	out_init(&o, c.f, true);
	sv_json_subvol(&o, NULL, &i, &snapshot_space);
	ck_assert_output(&c,
		"{\"id\":257,\"name\":\"snap\",\"path\":\"snaps/snap\",\"parent\":5,\"dir\":258,"
		"\"source\":256,\"generation\":12,\"ctransid\":9,\"otime\":1796233436,"
		"\"otime_nsec\":5,\"flags\":[\"ro\"],\"read_only\":true,\"default\":false,"
		"\"deleting\":false,\"drop_permille\":0,"
		"\"uuid\":\"00010203-0405-0607-0809-0a0b0c0d0e0f\","
		"\"source_uuid\":\"f0f1f2f3-f4f5-f6f7-f8f9-fafbfcfdfeff\",\"exclusive\":1064960,"
		"\"exclusive_data\":1048576,\"exclusive_meta\":16384}");

	/* The top level: no source, no uuid of one, exclusive not known; a name with a quote. */
	memset(&i, 0, sizeof(i));
	i.id = 5;
	i.flags = COWFS_SUBVOL_DEFAULT | COWFS_SUBVOL_DELETING;
	i.drop_permille = 7;
	strcpy(i.name, "a\"b");
	capture_begin(&c);
	out_init(&o, c.f, true);
	sv_json_subvol(&o, NULL, &i, NULL);
	ck_assert_output(&c,
		"{\"id\":5,\"name\":\"a\\\"b\",\"path\":\"\",\"parent\":0,\"dir\":0,\"source\":0,"
		"\"generation\":0,\"ctransid\":0,\"otime\":0,\"otime_nsec\":0,"
		"\"flags\":[\"default\",\"deleting\"],\"read_only\":false,\"default\":true,"
		"\"deleting\":true,\"drop_permille\":7,\"uuid\":null,\"source_uuid\":null,"
		"\"exclusive\":null,\"exclusive_data\":null,\"exclusive_meta\":null}");
}
END_TEST

START_TEST(show_text_and_json)
{
	struct cowfs_ioc_subvol_info i = snapshot_info();
	struct sv_ref snaps[] = { { 260, "snaps/snap2" }, { 261, "x" } };
	struct sv_show s = {
		.info = &i, .source_path = "base", .space = &snapshot_space,
		.snapshots = snaps, .snapshot_count = 2,
	};
	struct capture c;
	struct out o;

	utc();
	capture_begin(&c);
	sv_show_text(c.f, &s, false);
	ck_assert_output(&c,
		"snaps/snap\n"
		"\tName:                 snap\n"
		"\tSubvolume ID:         257\n"
		"\tParent ID:            5\n"
		"\tDirectory inode:      258\n"
		"\tSource ID:            256 (base)\n"
		"\tUUID:                 00010203-0405-0607-0809-0a0b0c0d0e0f\n"
		"\tSource UUID:          f0f1f2f3-f4f5-f6f7-f8f9-fafbfcfdfeff\n"
		"\tGeneration:           12\n"
		"\tGen at creation:      9\n"
		"\tCreation time:        2026-12-02 17:43:56 +0000\n"
		"\tFlags:                ro\n"
		"\tExclusive:            1.02MiB (data 1.00MiB, metadata 16.00KiB)\n"
		"\tSnapshot(s):\n"
		"\t\t260  snaps/snap2\n"
		"\t\t261  x\n");

	/* A source deleted since, no snapshots, no space figure, raw. */
	s.source_path = NULL;
	s.snapshot_count = 0;
	s.space = NULL;
	capture_begin(&c);
	sv_show_text(c.f, &s, true);
	char *got = capture_end(&c);
	ck_assert_ptr_nonnull(strstr(got, "\tSource ID:            256 (no longer there)\n"));
	ck_assert_ptr_nonnull(strstr(got, "\tExclusive:            -\n"));
	ck_assert_ptr_nonnull(strstr(got, "\tSnapshot(s):          -\n"));
	free(got);

	s.snapshot_count = 1;
	capture_begin(&c);
	out_init(&o, c.f, true);
	sv_show_json(&o, &s);
	got = capture_end(&c);
	ck_assert_ptr_nonnull(strstr(got, "\"exclusive\":null,\"exclusive_data\":null,"
				       "\"exclusive_meta\":null,\"source_path\":null,"
				       "\"snapshots\":[{\"id\":260,\"path\":\"snaps/snap2\"}]}"));
	ck_assert(got[0] == '{' && strncmp(got, "{\"id\":257,", 10) == 0);
	free(got);
}
END_TEST

START_TEST(space_text_and_json)
{
	struct sv_ref refs[] = { { 256, "base" }, { 257, "snaps/snap" } };
	struct sv_space_report r = {
		.subvols = refs, .count = 2, .space = &snapshot_space, .referenced = false,
	};
	struct capture c;
	struct out o;

	capture_begin(&c);
	sv_space_text(c.f, &r, false);
	ck_assert_output(&c,
		"Subvolume(s):         256  base\n"
		"                      257  snaps/snap\n"
		"Exclusive:            1.02MiB\n"
		"  data:               1.00MiB\n"
		"  metadata:           16.00KiB\n"
		"Freed if all deleted: 1.02MiB\n");
	r.count = 1;
	r.referenced = true;
	capture_begin(&c);
	sv_space_text(c.f, &r, true);
	ck_assert_output(&c,
		"Subvolume(s):         256  base\n"
		"Exclusive:            1064960\n"
		"  data:               1048576\n"
		"  metadata:           16384\n"
		"Referenced:           3145728\n"
		"Freed if deleted:     1064960\n");
	capture_begin(&c);
	out_init(&o, c.f, true);
	sv_space_json(&o, &r);
	ck_assert_output(&c,
		"{\"subvolumes\":[{\"id\":256,\"path\":\"base\"}],\"exclusive\":1064960,"
		"\"exclusive_data\":1048576,\"exclusive_meta\":16384,\"referenced\":3145728,"
		"\"freed_if_all_deleted\":1064960}");
	r.referenced = false;
	capture_begin(&c);
	out_init(&o, c.f, true);
	sv_space_json(&o, &r);
	char *got = capture_end(&c);
	ck_assert_ptr_nonnull(strstr(got, "\"referenced\":null,"));
	free(got);
}
END_TEST

START_TEST(split_paths)
{
	static const struct {
		const char *path, *dir, *name;
		int ret;
	} cases[] = {
		{ "a", ".", "a", 0 },
		{ "a/", ".", "a", 0 },
		{ "d/a", "d", "a", 0 },
		{ "d//a//", "d", "a", 0 },
		{ "/a", "/", "a", 0 },
		{ "//a", "/", "a", 0 },
		{ "/m/d/a", "/m/d", "a", 0 },
		{ "", NULL, NULL, -EINVAL },
		{ "/", NULL, NULL, -EINVAL },
		{ "d/.", NULL, NULL, -EINVAL },
		{ "d/..", NULL, NULL, -EINVAL },
		{ ".", NULL, NULL, -EINVAL },
	};
	char dir[64], name[COWFS_SUBVOL_NAME_MAX + 1], long_name[300], buf[16];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = sv_split(cases[i].path, dir, sizeof(dir), name);
		ck_assert_msg(ret == cases[i].ret, "%s: %d", cases[i].path, ret);
		if (ret == 0) {
			ck_assert_str_eq(dir, cases[i].dir);
			ck_assert_str_eq(name, cases[i].name);
		}
	}
	memset(long_name, 'x', 256);
	long_name[256] = '\0';
	ck_assert_int_eq(sv_split(long_name, dir, sizeof(dir), name), -ENAMETOOLONG);
	long_name[255] = '\0';
	ck_assert_int_eq(sv_split(long_name, dir, sizeof(dir), name), 0);
	ck_assert_int_eq(sv_split("/a/very/long/dir/name/n", dir, 8, name), -ENAMETOOLONG);
	/* "." resolved: the current directory by its own name in its parent. */
	ck_assert_int_eq(sv_split_resolved("/tmp/.", dir, sizeof(dir), name), 0);
	ck_assert_str_eq(dir, "/");
	ck_assert_str_eq(name, "tmp");

	ck_assert_int_eq(sv_join(".", "a", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "a");
	ck_assert_int_eq(sv_join("/", "a", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/a");
	ck_assert_int_eq(sv_join("d", "a", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "d/a");
	ck_assert_int_eq(sv_join("dddddddddddddd", "a", buf, sizeof(buf)), -ENAMETOOLONG);
}
END_TEST

START_TEST(ids)
{
	uint64_t id;

	ck_assert(sv_parse_id("256", &id) && id == 256);
	ck_assert(sv_parse_id("5", &id) && id == 5);
	ck_assert(!sv_parse_id("0", &id));
	ck_assert(!sv_parse_id("", &id));
	ck_assert(!sv_parse_id("-1", &id));
	ck_assert(!sv_parse_id("+1", &id));
	ck_assert(!sv_parse_id("12a", &id));
	ck_assert(!sv_parse_id(" 12", &id));
	ck_assert(!sv_parse_id("99999999999999999999999", &id));
}
END_TEST

START_TEST(messages)
{
	char buf[SV_MSG_MAX];

	ck_assert_str_eq(sv_strerror(SV_OP_OPEN, SV_ERR_NO_SUPPORT, buf),
			 "this cowfs mount does not support subvolumes (its server is older "
			 "than them)");
	/* After the probe said yes, one operation the server lacks is just that. */
	ck_assert_str_eq(sv_strerror(SV_OP_SPACE, SV_ERR_NO_SUPPORT, buf),
			 "operation not supported by this cowfs mount");
	ck_assert_str_eq(sv_strerror(SV_OP_OPEN, COWFS_ERR_NOT_COWFS, buf),
			 "not on a cowfs mount");
	ck_assert_str_eq(sv_strerror(SV_OP_OPEN, SV_ERR_NOT_SUBVOL, buf),
			 "not a subvolume (its root directory is needed)");
	ck_assert_str_eq(sv_strerror(SV_OP_DELETE, -EPERM, buf),
			 "Operation not permitted: needs root or the mount option "
			 "user_subvol_rm_allowed (and then owning the subvolume)");
	ck_assert_str_eq(sv_strerror(SV_OP_DELETE, -EBUSY, buf),
			 "Device or resource busy: is the mount's root or the default subvolume "
			 "('cowfs subvolume set-default' another one first)");
	ck_assert_str_eq(sv_strerror(SV_OP_DELETE, -ENOTDIR, buf), "not a subvolume");
	ck_assert_str_eq(sv_strerror(SV_OP_DELETE, -EINVAL, buf), "not a subvolume");
	ck_assert_ptr_nonnull(strstr(sv_strerror(SV_OP_CREATE, -EROFS, buf),
				     "Read-only file system: the directory is in a read-only "
				     "subvolume ('cowfs property set SUBVOL ro false'"));
	ck_assert_str_eq(sv_strerror(SV_OP_DEFAULT, -EPERM, buf),
			 "Operation not permitted: setting the default needs root");
	/* The same errno from another operation: its own hint, or the errno's text alone. */
	ck_assert_str_eq(sv_strerror(SV_OP_SET_FLAGS, -EPERM, buf),
			 "Operation not permitted: needs the subvolume's owner or root");
	ck_assert_str_eq(sv_strerror(SV_OP_CREATE, -EIO, buf), "Input/output error");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("subvol_format");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, uuids);
	tcase_add_test(tc, flags_and_paths);
	tcase_add_test(tc, list_lines);
	tcase_add_test(tc, subvol_json);
	tcase_add_test(tc, show_text_and_json);
	tcase_add_test(tc, space_text_and_json);
	tcase_add_test(tc, split_paths);
	tcase_add_test(tc, ids);
	tcase_add_test(tc, messages);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
