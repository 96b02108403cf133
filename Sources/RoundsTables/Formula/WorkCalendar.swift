import Foundation

/// Which days are working days, for WORKDAY and NETWORKDAYS: Monday to Friday, except the public
/// holidays, plus the weekend days the State Council makes working days to bridge a holiday
/// (调休). Both lists are data the hospital edits each year when the national notice comes out.
public struct WorkCalendar: Sendable, Equatable {
    /// Days off that would otherwise be working days, as yyyymmdd.
    public var holidays: Set<Int>
    /// Weekend days that are working days, as yyyymmdd.
    public var workingWeekendDays: Set<Int>

    public init(holidays: Set<Int> = [], workingWeekendDays: Set<Int> = []) {
        self.holidays = holidays
        self.workingWeekendDays = workingWeekendDays
    }

    /// Plain Monday-to-Friday weeks.
    public static let weekdaysOnly = WorkCalendar()

    public func isWorkingDay(_ day: Int, weekday: Int) -> Bool {
        if workingWeekendDays.contains(day) { return true }
        if holidays.contains(day) { return false }
        return weekday != 1 && weekday != 7  // Calendar: 1 = Sunday, 7 = Saturday
    }

    /// yyyymmdd of a day in the calendar (time zone included).
    static func key(_ date: Date, _ calendar: Calendar) -> Int {
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return c.year! * 10_000 + c.month! * 100 + c.day!
    }
}
