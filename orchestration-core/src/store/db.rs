//! The storage seam: what the store's use cases need from a database, whichever engine it is.
//!
//! A backend implements [`Sql`] on its transaction: run a statement, stream the rows of a
//! query. Everything above it (loading rows, saving what the core decided, appending events) is
//! written once, in the SQL both engines accept: numbered parameters (`?1`), `RETURNING`,
//! `ON CONFLICT`, `coalesce`, and integers for flags. The PostgreSQL backend rewrites the
//! parameters to its `$1` and drops SQLite's index hints; nothing else differs.
//!
//! Values cross the seam as [`Value`]: the five storage classes both engines share (an integer,
//! a real, text, bytes, null), borrowed where they can be, so binding and reading a row
//! allocates nothing beyond what the caller keeps.

use std::cell::RefCell;
use std::fmt;

use crate::error::{Error, Result, StorageError};

use super::counts::Pending;

/// One value bound to a statement or read from a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl<'a> Value<'a> {
    /// The text, when the value is text.
    pub(crate) fn as_str(&self) -> Option<&'a str> {
        match *self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The text, `None` for null, an error for a value of another type.
    pub(crate) fn as_str_or_null(&self) -> Result<Option<&'a str>> {
        match *self {
            Value::Text(t) => Ok(Some(t)),
            Value::Null => Ok(None),
            other => Err(Error::Storage(StorageError::conversion(format!(
                "expected text or null, found {}",
                other.kind()
            )))),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }
}

/// Which other writers a write transaction may run beside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writers<'a> {
    /// None: the transaction has the database to itself, as every SQLite writer has, and may
    /// read, decide and write anything.
    Alone,
    /// Others of its kind, where the backend can run them so (PostgreSQL): each locks the
    /// rows it changes, and a use case that meets a case it cannot settle with row locks asks
    /// to be run again alone ([`Sql::again_alone`]). `agent` names the agent whose limit of
    /// tasks held the transaction checks and takes, which two of them must never do at once.
    Beside { agent: Option<&'a str> },
}

/// A transaction of a backend, as the store's use cases see it. Statements are cached by their
/// text, so a statement run in a loop is prepared once per connection.
pub(crate) trait Sql {
    /// Whether other writers may change rows of this database while this transaction runs
    /// ([`Writers::Beside`] on a backend that runs them so). Then what the transaction
    /// changes it must first lock (`FOR UPDATE`), and what it cannot lock it must leave to a
    /// transaction that runs alone. Never on SQLite, whose writers run one at a time.
    fn beside_others(&self) -> bool {
        false
    }

    /// Has the backend roll this transaction back and run it again alone; returns the error
    /// the use case returns to get there. Only asked of a transaction beside others.
    fn again_alone(&self) -> Error {
        Error::Storage(StorageError::message(
            crate::error::StorageFault::Engine,
            "a transaction that runs alone asked to run alone".to_owned(),
        ))
    }

    /// The changes to the counters this transaction keeps to its end, when it runs beside
    /// others (see `counts`); `None` when it writes them at once.
    fn pending(&self) -> Option<&RefCell<Pending>> {
        None
    }

    /// Appends one event to the log: `sql`, the statement that inserts it, with `params`. A
    /// backend whose writers run beside each other holds it back to the commit, so that the
    /// log's positions are handed out in the order the transactions commit.
    fn append_event(&self, sql: &str, params: &[Value<'_>]) -> Result<()> {
        self.run(sql, params).map(|_| ())
    }

    /// Appends one event, as [`Sql::append_event`] does, and then runs `then`, a statement
    /// that keeps a row about the event: its first parameter is the event's position and
    /// `then_params` the rest. `returning` is the statement that inserts the event and
    /// returns its position. A backend that holds the event back to the commit holds `then`
    /// back with it, so the row gets the position the event gets.
    fn append_event_then(
        &self,
        returning: &str,
        params: &[Value<'_>],
        then: &str,
        then_params: &[Value<'_>],
    ) -> Result<()> {
        append_event_then_now(self, returning, params, then, then_params)
    }

    /// Runs a statement that returns no rows; returns how many rows it changed.
    fn run(&self, sql: &str, params: &[Value<'_>]) -> Result<usize>;

    /// Runs a query and calls `each` on its rows in order, until it returns `false`.
    fn rows(
        &self,
        sql: &str,
        params: &[Value<'_>],
        each: &mut dyn FnMut(&Row<'_>) -> Result<bool>,
    ) -> Result<()>;
}

/// [`Sql::append_event_then`] for a transaction that appends the event at once.
pub(crate) fn append_event_then_now(
    tx: &(impl Sql + ?Sized),
    returning: &str,
    params: &[Value<'_>],
    then: &str,
    then_params: &[Value<'_>],
) -> Result<()> {
    let mut seq = 0;
    tx.rows(returning, params, &mut |row| {
        seq = row.get(0)?;
        Ok(false)
    })?;
    let mut all = Vec::with_capacity(1 + then_params.len());
    all.push(Value::Integer(seq));
    all.extend_from_slice(then_params);
    tx.run(then, &all).map(|_| ())
}

/// A transaction, whichever backend opened it.
pub(crate) type Tx<'a> = dyn Sql + 'a;

/// One row of a query's result, as a backend reads it.
pub(crate) trait RawRow {
    /// The value of column `i`.
    fn value(&self, i: usize) -> Result<Value<'_>>;

    /// How many columns the row has.
    fn width(&self) -> usize;
}

/// One row of a query's result.
pub(crate) struct Row<'a>(pub(crate) &'a dyn RawRow);

impl Row<'_> {
    /// Column `i` as it is stored.
    pub(crate) fn get_ref(&self, i: usize) -> Result<Value<'_>> {
        self.0.value(i)
    }

    /// Column `i` as a `T`; a value of another type is a storage error that names both.
    pub(crate) fn get<I: ColumnIndex, T: FromValue>(&self, i: I) -> Result<T> {
        let i = i.index();
        let value = self.0.value(i)?;
        T::from_value(value).ok_or_else(|| {
            Error::Storage(StorageError::conversion(format!(
                "column {i}: cannot read {} `{}` as {}",
                value.kind(),
                Shown(value),
                std::any::type_name::<T>()
            )))
        })
    }
}

/// A value as an error message shows it: short.
struct Shown<'a>(Value<'a>);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Null => f.write_str("NULL"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Real(r) => write!(f, "{r}"),
            Value::Text(t) if t.chars().count() > 40 => {
                write!(f, "{}…", t.chars().take(40).collect::<String>())
            }
            Value::Text(t) => f.write_str(t),
            Value::Blob(b) => write!(f, "{} bytes", b.len()),
        }
    }
}

/// How a column is named: by position. A trait so that `get::<_, T>(i)` reads as in rusqlite.
pub(crate) trait ColumnIndex {
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// A Rust value a column converts to. `None` when the value does not fit.
pub(crate) trait FromValue: Sized {
    fn from_value(value: Value<'_>) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(value: Value<'_>) -> Option<i64> {
        match value {
            Value::Integer(i) => Some(i),
            // PostgreSQL's sums of integers are numeric, read as reals: whole ones fit.
            Value::Real(r) if r.fract() == 0.0 && r.abs() < 9.0e15 => Some(r as i64),
            _ => None,
        }
    }
}

macro_rules! from_integer {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value<'_>) -> Option<$t> {
                i64::from_value(value).and_then(|i| <$t>::try_from(i).ok())
            }
        }
    )*};
}

from_integer!(i32, u32, u64, usize, u8, u16);

impl FromValue for bool {
    fn from_value(value: Value<'_>) -> Option<bool> {
        i64::from_value(value).map(|i| i != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: Value<'_>) -> Option<f64> {
        match value {
            Value::Real(r) => Some(r),
            Value::Integer(i) => Some(i as f64),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(value: Value<'_>) -> Option<String> {
        match value {
            Value::Text(t) => Some(t.to_owned()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: Value<'_>) -> Option<Vec<u8>> {
        match value {
            Value::Blob(b) => Some(b.to_vec()),
            _ => None,
        }
    }
}

impl FromValue for [u8; 16] {
    fn from_value(value: Value<'_>) -> Option<[u8; 16]> {
        match value {
            Value::Blob(b) => b.try_into().ok(),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value<'_>) -> Option<Option<T>> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A Rust value bound to a statement's parameter.
pub(crate) trait ToValue {
    fn to_value(&self) -> Value<'_>;
}

macro_rules! to_integer {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value<'_> {
                Value::Integer(*self as i64)
            }
        }
    )*};
}

// Counts and ids here stay far below `i64::MAX`; the casts cannot wrap in practice.
to_integer!(i64, i32, u32, u64, usize, u8, u16);

impl ToValue for bool {
    fn to_value(&self) -> Value<'_> {
        Value::Integer(i64::from(*self))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl ToValue for [u8; 16] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value<'_> {
        match self {
            Some(value) => value.to_value(),
            None => Value::Null,
        }
    }
}

/// The parameters of one statement: `params![a, b]`, an array of one type, or `[]`. They are
/// converted on the stack for the statement's run: binding allocates nothing.
pub(crate) trait Params {
    fn bind<R>(&self, run: impl FnOnce(&[Value<'_>]) -> R) -> R;
}

/// How many parameters are converted on the stack; a statement with more (none today)
/// converts them on the heap.
const STACK_PARAMS: usize = 16;

impl Params for &[&dyn ToValue] {
    fn bind<R>(&self, run: impl FnOnce(&[Value<'_>]) -> R) -> R {
        if self.len() > STACK_PARAMS {
            let values: Vec<Value<'_>> = self.iter().map(|p| p.to_value()).collect();
            return run(&values);
        }
        let mut values = [Value::Null; STACK_PARAMS];
        for (slot, param) in values.iter_mut().zip(self.iter()) {
            *slot = param.to_value();
        }
        run(&values[..self.len()])
    }
}

// No parameters: `[]`, whose element type is this one so that inference needs no hint.
impl Params for [&dyn ToValue; 0] {
    fn bind<R>(&self, run: impl FnOnce(&[Value<'_>]) -> R) -> R {
        run(&[])
    }
}

macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToValue> Params for [T; $n] {
            fn bind<R>(&self, run: impl FnOnce(&[Value<'_>]) -> R) -> R {
                let values: [Value<'_>; $n] = std::array::from_fn(|i| self[i].to_value());
                run(&values)
            }
        }
    )*};
}

array_params!(1, 2, 3, 4, 5, 6, 7, 8);

/// The parameters of a statement, of any types: `params![id, name, None::<i64>]`.
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::store::db::ToValue]
    };
    ($($param:expr),+ $(,)?) => {
        &[$(&$param as &dyn $crate::store::db::ToValue),+] as &[&dyn $crate::store::db::ToValue]
    };
}

pub(crate) use params;

/// A statement about to run on a transaction: what `prepare_cached` returns, so that the use
/// cases read as they would on one engine.
pub(crate) struct Statement<'a> {
    tx: &'a Tx<'a>,
    sql: &'a str,
}

impl<'a> Statement<'a> {
    /// Runs it; returns how many rows it changed.
    pub(crate) fn execute(&mut self, params: impl Params) -> Result<usize> {
        params.bind(|values| self.tx.run(self.sql, values))
    }

    /// The first row, or a storage error of no rows (see [`OptionalExtension`]).
    pub(crate) fn query_row<T>(
        &mut self,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        query_row(self.tx, self.sql, params, f)
    }

    /// Every row, mapped by `f`, in order.
    pub(crate) fn query_map<T>(
        &mut self,
        params: impl Params,
        f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        // Each row is mapped as it is read; the results are handed out as rusqlite's are, one
        // `Result` per row, from one allocation.
        let mut f = f;
        Ok(query_map(self.tx, self.sql, params, |row| Ok(Ok(f(row)?)))?.into_iter())
    }

    /// Every row, read into memory, to walk with `next` while running other statements.
    pub(crate) fn query(&mut self, params: impl Params) -> Result<Rows> {
        let mut rows = Vec::new();
        params.bind(|values| {
            self.tx.rows(self.sql, values, &mut |row| {
                let values = (0..row.0.width())
                    .map(|i| row.0.value(i).map(Owned::from))
                    .collect::<Result<Vec<_>>>()?;
                rows.push(values);
                Ok(true)
            })
        })?;
        Ok(Rows {
            rows: rows.into_iter(),
            current: Vec::new(),
        })
    }

    /// Runs an `INSERT … RETURNING id` and returns the new row's id.
    pub(crate) fn insert(&mut self, params: impl Params) -> Result<i64> {
        self.query_row(params, |row| row.get(0))
    }
}

/// The rows of a query, read into memory.
pub(crate) struct Rows {
    rows: std::vec::IntoIter<Vec<Owned>>,
    current: Vec<Owned>,
}

impl Rows {
    /// The next row, `None` after the last.
    pub(crate) fn next(&mut self) -> Result<Option<Row<'_>>> {
        match self.rows.next() {
            Some(row) => {
                self.current = row;
                Ok(Some(Row(&self.current)))
            }
            None => Ok(None),
        }
    }
}

/// A value read out of a row, or held back to be bound later, owned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Owned {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<Value<'_>> for Owned {
    fn from(value: Value<'_>) -> Owned {
        match value {
            Value::Null => Owned::Null,
            Value::Integer(i) => Owned::Integer(i),
            Value::Real(r) => Owned::Real(r),
            Value::Text(t) => Owned::Text(t.to_owned()),
            Value::Blob(b) => Owned::Blob(b.to_vec()),
        }
    }
}

impl Owned {
    /// The value, borrowed again.
    pub(crate) fn value(&self) -> Value<'_> {
        match self {
            Owned::Null => Value::Null,
            Owned::Integer(i) => Value::Integer(*i),
            Owned::Real(r) => Value::Real(*r),
            Owned::Text(t) => Value::Text(t),
            Owned::Blob(b) => Value::Blob(b),
        }
    }
}

impl RawRow for Vec<Owned> {
    fn value(&self, i: usize) -> Result<Value<'_>> {
        match self.get(i) {
            Some(value) => Ok(value.value()),
            None => Err(Error::Storage(StorageError::conversion(format!(
                "column {i} is past the end of the row"
            )))),
        }
    }

    fn width(&self) -> usize {
        self.len()
    }
}

fn query_row<T>(
    tx: &Tx<'_>,
    sql: &str,
    params: impl Params,
    f: impl FnOnce(&Row<'_>) -> Result<T>,
) -> Result<T> {
    let mut f = Some(f);
    let mut out = None;
    params.bind(|values| {
        tx.rows(sql, values, &mut |row| {
            if let Some(f) = f.take() {
                out = Some(f(row)?);
            }
            Ok(false)
        })
    })?;
    out.ok_or_else(|| Error::Storage(StorageError::no_rows()))
}

fn query_map<T>(
    tx: &Tx<'_>,
    sql: &str,
    params: impl Params,
    mut f: impl FnMut(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    params.bind(|values| {
        tx.rows(sql, values, &mut |row| {
            out.push(f(row)?);
            Ok(true)
        })
    })?;
    Ok(out)
}

impl<'t> dyn Sql + 't {
    /// A statement of this transaction. Named as in rusqlite: every statement is cached.
    pub(crate) fn prepare_cached<'a>(&'a self, sql: &'a str) -> Result<Statement<'a>>
    where
        't: 'a,
    {
        Ok(Statement { tx: self, sql })
    }

    /// The same as [`Self::prepare_cached`]: every statement is cached.
    pub(crate) fn prepare<'a>(&'a self, sql: &'a str) -> Result<Statement<'a>>
    where
        't: 'a,
    {
        self.prepare_cached(sql)
    }

    /// The first row of a query, or a storage error of no rows.
    pub(crate) fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        query_row(self, sql, params, f)
    }
}

/// `optional()` on a query's result: no row becomes `None`, as in rusqlite.
pub(crate) trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(Error::Storage(e)) if e.is_no_rows() => Ok(None),
            Err(e) => Err(e),
        }
    }
}
