import Foundation
import RoundsCore

/// The reasons a cell, a field or an import line is refused, as a nurse reads them in Chinese.
/// The engine words them in English (logs, API clients); what people see is translated here by
/// pattern, the quoted value kept as it was typed. A reason with no pattern stays as written.
enum CellReasons {
    /// (English pattern, Chinese template): `(.+)` captures fill `$1`, `$2`…
    private static let table: [(String, String)] = [
        ("“(.*)” is not a number", "“$1”不是数字"),
        ("is not a finite number", "不是有效的数字"),
        ("is a number, not yes/no", "应为数字，不是是/否"),
        ("is a number", "应为数字"),
        ("“(.*)” is not a date \\((.*)\\)", "“$1”不是有效日期（例：$2）"),
        ("“(.*)” is not a date and time \\((.*)\\)", "“$1”不是有效的日期时间（例：$2）"),
        ("“(.*)” is not yes or no", "“$1”不是“是”或“否”"),
        ("is yes or no \\(true/false\\)", "应为“是”或“否”"),
        ("“(.*)” is not a telephone number", "“$1”不是电话号码"),
        ("“(.*)” is not an e-mail address", "“$1”不是电子邮箱地址"),
        ("“(.*)” is not an http\\(s\\) address", "“$1”不是网址"),
        ("is longer than (\\d+) characters", "超过 $1 个字"),
        ("is one line; use a long-text field for several", "只能填一行；多行请用长文本字段"),
        ("is a fraction from 0 to 1 \\(50 % is 0.5\\)", "应为 0 到 1 之间的小数（50% 填 0.5）"),
        ("a duration cannot be negative", "时长不能为负"),
        ("is a whole number of stars from 0 to (\\d+)", "应为 0 到 $1 的整数星级"),
        ("is a list of choices", "应为选项列表"),
        ("takes one person", "只能选一人"),
        ("is staff ids", "应为员工"),
        ("links at most 1,000 records", "最多关联 1000 条记录"),
        ("links one record", "只能关联一条记录"),
        ("takes one value, not a list", "只能填一个值"),
        ("is computed by Rounds and cannot be set", "由系统计算，不能填写"),
        ("“(.*)” is not one of the choices \\((.*)\\)", "“$1”不在选项中（可选：$2）"),
        ("names someone who is not on the staff", "所填人员不在本院员工中"),
        ("is not a department of this hospital", "不是本院的科室"),
        ("no patient with MRN “(.*)” in this hospital", "本院没有病案号为“$1”的患者"),
        ("no record “(.*)” in (.*)", "“$2”中没有记录“$1”"),
        ("“(.*)” names (\\d+) records of (.*); use its number \\(#(\\d+)\\)", "“$1”在“$3”中对应 $2 条记录，请用编号（#$4）"),
        ("links a table that is gone", "所关联的表已删除"),
        ("there is no such field in this table", "此表没有这个字段"),
        ("this field is read-only for your role", "您的角色对此字段只读"),
        ("changed by someone else since version (\\d+)", "自版本 $1 以来已被他人修改"),
        ("rules are for editor, commenter and viewer", "规则只适用于编辑者、评论者和查看者"),
        ("the first field names each record and cannot be hidden", "首个字段是记录的名称，不能隐藏"),
    ]

    private static let compiled: [(NSRegularExpression, String)] = table.map { pattern, template in
        (try! NSRegularExpression(pattern: "^" + pattern + "$"), template)
    }

    static func localized(_ reason: String, _ locale: RoundsCore.Locale) -> String {
        guard locale != .en else { return reason }
        let range = NSRange(reason.startIndex..., in: reason)
        for (regex, template) in compiled {
            guard regex.firstMatch(in: reason, range: range) != nil else { continue }
            return regex.stringByReplacingMatches(in: reason, range: range, withTemplate: template)
        }
        return reason
    }

    static func localized(_ items: [RoundsError.Item]?, _ locale: RoundsCore.Locale) -> [RoundsError.Item]? {
        items?.map { item in
            var copy = item
            copy.reason = localized(item.reason, locale)
            return copy
        }
    }
}
