/*
 * printk.c - printk() and a small vsnprintf() (kernel/printk, lib/vsprintf.c).
 *
 * printk() formats into a static buffer and hands it to the host with
 * HC_PRINTK(buf, len); the KERN_* prefix stays in the text for the host to
 * read, as Linux's printk_get_level() does.  The formats are listed in
 * <mmemu/printk.h>.
 */
#include <mmemu.h>

#define ZEROPAD	0x01	/* pad with zero */
#define SIGN	0x02	/* unsigned/signed */
#define PLUS	0x04	/* show plus */
#define SPACE	0x08	/* space if plus */
#define LEFT	0x10	/* left justified */
#define SMALL	0x20	/* use lowercase in hex */
#define SPECIAL	0x40	/* prefix hex with "0x", octal with "0" */

#define MAX_ERRNO	4095	/* include/linux/err.h: ERR_PTR() values are the last 4095 */

struct printf_spec {
	unsigned int flags;
	int field_width;	/* -1: none */
	int precision;		/* -1: none */
	unsigned int base;
	char qualifier;		/* 'H' (hh), 'h', 'l', 'L' (ll), 'z', 0 */
};

/* The output so far; like vsnprintf() it counts what did not fit, too. */
struct outbuf {
	char *buf;
	size_t size;
	size_t len;
};

static char printk_buf[PRINTK_BUF_SIZE];

static void __sdk out_char(struct outbuf *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void __sdk out_pad(struct outbuf *o, char c, int n)
{
	while (n-- > 0)
		out_char(o, c);
}

/* Digits of num in base, least significant first; returns how many. */
static int __sdk put_digits(char *tmp, unsigned long long num, unsigned int base,
			    bool small)
{
	const char *digits = small ? "0123456789abcdef" : "0123456789ABCDEF";
	int i = 0;

	do {
		if (num >> 32) {
			tmp[i++] = digits[num % base];	/* 64-bit: compiler-rt */
			num /= base;
		} else {
			unsigned long n32 = (unsigned long)num;

			tmp[i++] = digits[n32 % base];
			num = n32 / base;
		}
	} while (num);
	return i;
}

static void __sdk out_number(struct outbuf *o, unsigned long long num, bool negative,
			     const struct printf_spec *spec)
{
	char tmp[24], sign = 0;
	int len, prefix = 0, width = spec->field_width;
	int precision = spec->precision;
	/* As in C, '0' is ignored under '-' or with a precision. */
	bool zeropad = (spec->flags & ZEROPAD) && !(spec->flags & LEFT) &&
		       spec->precision < 0;

	if (negative)
		sign = '-';
	else if (spec->flags & PLUS)
		sign = '+';
	else if (spec->flags & SPACE)
		sign = ' ';
	if ((spec->flags & SPECIAL) && spec->base != 10)
		prefix = spec->base == 16 ? 2 : 1;
	len = (num == 0 && precision == 0) ? 0 :
	      put_digits(tmp, num, spec->base, spec->flags & SMALL);
	if (precision < len)
		precision = len;
	width -= precision + prefix + (sign != 0);
	if (!(spec->flags & LEFT) && !zeropad)
		out_pad(o, ' ', width);
	if (sign)
		out_char(o, sign);
	if (prefix) {
		out_char(o, '0');
		if (prefix == 2)
			out_char(o, (spec->flags & SMALL) ? 'x' : 'X');
	}
	if (zeropad)
		out_pad(o, '0', width);
	out_pad(o, '0', precision - len);
	while (len-- > 0)
		out_char(o, tmp[len]);
	if (spec->flags & LEFT)
		out_pad(o, ' ', width);
}

/*
 * check_pointer_msg() of 6.1's vsprintf: "(null)" for NULL, "(efault)" for
 * the first page and ERR_PTR() values; anything else is read as it is (a
 * wild pointer faults in the guest, an oops, as in 6.1).
 */
static const char * __sdk check_pointer_msg(const void *ptr)
{
	if (!ptr)
		return "(null)";
	if ((unsigned long)ptr < PAGE_SIZE || (unsigned long)ptr >= (unsigned long)-MAX_ERRNO)
		return "(efault)";
	return NULL;
}

static void __sdk out_string(struct outbuf *o, const char *s,
			     const struct printf_spec *spec)
{
	size_t len, max = spec->precision < 0 ? (size_t)-1 : (size_t)spec->precision;
	const char *msg = check_pointer_msg(s);
	int pad;

	if (msg)
		s = msg;
	len = strnlen(s, max);
	pad = spec->field_width - (int)len;
	if (!(spec->flags & LEFT))
		out_pad(o, ' ', pad);
	while (len--)
		out_char(o, *s++);
	if (spec->flags & LEFT)
		out_pad(o, ' ', pad);
}

/*
 * %p: the raw pointer as 0x + 8 hex digits (differs: Linux hashes it);
 * %px: Linux's unhashed form, 8 hex digits.  Any extension letters after
 * the p are skipped, as Linux skips the ones it knows.
 */
static const char * __sdk out_pointer(struct outbuf *o, const char *fmt, void *ptr,
				      struct printf_spec *spec)
{
	bool px = (fmt[1] == 'x');

	while ((fmt[1] >= 'a' && fmt[1] <= 'z') || (fmt[1] >= 'A' && fmt[1] <= 'Z') ||
	       (fmt[1] >= '0' && fmt[1] <= '9'))
		fmt++;
	spec->base = 16;
	spec->flags |= SMALL;
	if (spec->field_width < 0) {
		spec->field_width = 2 * sizeof(void *);
		spec->flags |= ZEROPAD;
	}
	if (!px) {
		out_char(o, '0');
		out_char(o, 'x');
	}
	out_number(o, (unsigned long)ptr, false, spec);
	return fmt;
}

static int __sdk skip_atoi(const char **s)
{
	int i = 0;

	while (**s >= '0' && **s <= '9')
		i = i * 10 + *((*s)++) - '0';
	return i;
}

/* Parse flags, width, precision and qualifier; *fmt ends on the conversion. */
static const char * __sdk parse_spec(const char *fmt, va_list *ap,
				     struct printf_spec *spec)
{
	spec->flags = 0;
	for (;; fmt++) {
		if (*fmt == '-')
			spec->flags |= LEFT;
		else if (*fmt == '+')
			spec->flags |= PLUS;
		else if (*fmt == ' ')
			spec->flags |= SPACE;
		else if (*fmt == '#')
			spec->flags |= SPECIAL;
		else if (*fmt == '0')
			spec->flags |= ZEROPAD;
		else
			break;
	}
	spec->field_width = -1;
	if (*fmt >= '0' && *fmt <= '9') {
		spec->field_width = skip_atoi(&fmt);
	} else if (*fmt == '*') {
		fmt++;
		spec->field_width = va_arg(*ap, int);
		if (spec->field_width < 0) {
			spec->field_width = -spec->field_width;
			spec->flags |= LEFT;
		}
	}
	spec->precision = -1;
	if (*fmt == '.') {
		fmt++;
		if (*fmt == '*') {
			fmt++;
			spec->precision = va_arg(*ap, int);
		} else {
			spec->precision = skip_atoi(&fmt);
		}
		if (spec->precision < 0)
			spec->precision = 0;
	}
	spec->qualifier = 0;
	if (*fmt == 'h' || *fmt == 'l' || *fmt == 'z' || *fmt == 'Z' || *fmt == 't') {
		spec->qualifier = *fmt == 'Z' || *fmt == 't' ? 'z' : *fmt;
		fmt++;
		if (spec->qualifier == 'l' && *fmt == 'l')
			spec->qualifier = 'L', fmt++;
		else if (spec->qualifier == 'h' && *fmt == 'h')
			spec->qualifier = 'H', fmt++;
	}
	return fmt;
}

/* Fetch an integer argument of the spec's size; sets *negative for %d. */
static unsigned long long __sdk fetch_int(va_list *ap, const struct printf_spec *spec,
					  bool *negative)
{
	long long v;

	*negative = false;
	if (spec->qualifier == 'L')
		v = va_arg(*ap, long long);
	else if (spec->qualifier == 'l' || spec->qualifier == 'z')
		v = (spec->flags & SIGN) ? (long long)va_arg(*ap, long) :
					   (long long)va_arg(*ap, unsigned long);
	else
		v = (spec->flags & SIGN) ? (long long)va_arg(*ap, int) :
					   (long long)va_arg(*ap, unsigned int);
	if (spec->qualifier == 'h')
		v = (spec->flags & SIGN) ? (short)v : (unsigned short)v;
	else if (spec->qualifier == 'H')
		v = (spec->flags & SIGN) ? (signed char)v : (unsigned char)v;
	if ((spec->flags & SIGN) && v < 0) {
		*negative = true;
		return -(unsigned long long)v;
	}
	return (unsigned long long)v;
}

/* One conversion at *fmt; returns the last character it used. */
static const char * __sdk format_one(struct outbuf *o, const char *fmt, va_list *ap,
				     struct printf_spec *spec)
{
	unsigned long long num;
	bool negative;

	spec->base = 10;
	switch (*fmt) {
	case 'c':
		if (!(spec->flags & LEFT))
			out_pad(o, ' ', spec->field_width - 1);
		out_char(o, (char)va_arg(*ap, int));
		if (spec->flags & LEFT)
			out_pad(o, ' ', spec->field_width - 1);
		return fmt;
	case 's':
		out_string(o, va_arg(*ap, const char *), spec);
		return fmt;
	case 'p':
		return out_pointer(o, fmt, va_arg(*ap, void *), spec);
	case '%':
		out_char(o, '%');
		return fmt;
	case 'd':
	case 'i':
		spec->flags |= SIGN;
		break;
	case 'u':
		break;
	case 'x':
		spec->flags |= SMALL;
		/* fall through */
	case 'X':
		spec->base = 16;
		break;
	case 'o':
		spec->base = 8;
		break;
	default:	/* unknown conversion: print it as it stands */
		out_char(o, '%');
		if (*fmt)
			out_char(o, *fmt);
		else
			fmt--;
		return fmt;
	}
	num = fetch_int(ap, spec, &negative);
	out_number(o, num, negative, spec);
	return fmt;
}

int __sdk vsnprintf(char *buf, size_t size, const char *fmt, va_list args)
{
	struct outbuf o = { buf, size, 0 };
	struct printf_spec spec;

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			out_char(&o, *fmt);
			continue;
		}
		fmt = parse_spec(fmt + 1, &args, &spec);
		fmt = format_one(&o, fmt, &args, &spec);
	}
	if (size > 0)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int __sdk vscnprintf(char *buf, size_t size, const char *fmt, va_list args)
{
	int i = vsnprintf(buf, size, fmt, args);

	if ((size_t)i < size)
		return i;
	return size ? (int)size - 1 : 0;
}

int __sdk snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list args;
	int i;

	va_start(args, fmt);
	i = vsnprintf(buf, size, fmt, args);
	va_end(args);
	return i;
}

int __sdk scnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list args;
	int i;

	va_start(args, fmt);
	i = vscnprintf(buf, size, fmt, args);
	va_end(args);
	return i;
}

int __sdk sprintf(char *buf, const char *fmt, ...)
{
	va_list args;
	int i;

	va_start(args, fmt);
	i = vsnprintf(buf, (size_t)-1 >> 1, fmt, args);
	va_end(args);
	return i;
}

/* Hand the formatted text to the host: HC_PRINTK(buf, len). */
int __sdk vprintk(const char *fmt, va_list args)
{
	int len = vscnprintf(printk_buf, sizeof(printk_buf), fmt, args);

	hypercall2(HC_PRINTK, (unsigned long)printk_buf, (unsigned long)len);
	return len;
}

int __sdk printk(const char *fmt, ...)
{
	va_list args;
	int len;

	va_start(args, fmt);
	len = vprintk(fmt, args);
	va_end(args);
	return len;
}

/* lib/bug.c:__warn_printk(): the cut-here line, then the WARN() message. */
void __sdk __warn_printk(const char *fmt, ...)
{
	va_list args;

	pr_warn(CUT_HERE);
	va_start(args, fmt);
	vprintk(fmt, args);
	va_end(args);
}
